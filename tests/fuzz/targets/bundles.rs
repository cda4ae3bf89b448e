//! Target `bundle_json`: a bundle manifest read as `rollout` and as `reissue --into` read it.

use super::*;

// ---- bundle_json: a bundle manifest read as `rollout` and as `reissue --into` read it ----

struct Bundle {
    dir: tempfile::TempDir,
    /// Bundle directory → files in it.
    files: BTreeMap<PathBuf, Vec<u8>>,
    manifests: Vec<Vec<u8>>,
}

/// Real bundles, made from the fixtures by the `certs` binary once per process.
fn bundles() -> &'static Bundle {
    static B: OnceLock<Bundle> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let k8s = fixtures().join("kubeadm/etc/kubernetes");
        let b = |s: &str| dir.path().join(s);
        let runs: Vec<Vec<std::ffi::OsString>> = vec![
            vec![
                "reissue".into(),
                k8s.join("pki/apiserver.crt").into(),
                k8s.join("admin.conf").into(),
                "--add-san".into(),
                "10.21.22.100".into(),
                "--out".into(),
                b("reissue").into(),
            ],
            vec![
                "kubeconfig".into(),
                "set-server".into(),
                "https://10.21.22.100:6443".into(),
                k8s.join("admin.conf").into(),
                k8s.join("scheduler.conf").into(),
                "--out".into(),
                b("vip").into(),
            ],
        ];
        for args in runs {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_certs"))
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut files = BTreeMap::new();
        let mut manifests = Vec::new();
        for (p, bytes) in files_under(dir.path()) {
            if p.file_name().is_some_and(|n| n == "bundle.json") {
                manifests.push(bytes.clone());
            }
            files.insert(p, bytes);
        }
        Bundle {
            dir,
            files,
            manifests,
        }
    })
}

fn bundle_seeds() -> Vec<Vec<u8>> {
    bundles().manifests.clone()
}

fn bundle_json(input: &[u8]) -> Verdict {
    let b = bundles();
    // Resolved against the reissue bundle's files, as they are.
    let dir = b.dir.path().join("reissue");
    let read = |p: &Path| b.files.get(p).cloned();
    let mut sig = match certs::edit::bundle::existing(&dir, input, &read) {
        Ok(v) => format!("ok {}", v["files"].as_array().map_or(0, Vec::len)),
        Err(e) => shape(&e.to_string()),
    };
    let scratch = b.dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("bundle.json"), input).unwrap();
    match certs::rollout::plan::read_bundle(&scratch) {
        Ok(m) => sig.push_str(&format!("|ok {}", m.files.len())),
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    Ok(sig)
}

pub const BUNDLE_JSON: Target = Target {
    name: "bundle_json",
    about: "rollout::plan::read_bundle and edit::bundle::existing on a bundle.json (seeds: bundles the binary makes from the fixtures)",
    seeds: bundle_seeds,
    dict: &[
        b"\"schema\": \"certs.bundle/v1\"",
        b"\"bundle_path\": \"../../etc/passwd\"",
        b"\"target\": \"/etc/kubernetes/pki/../../../victim\"",
        b"\"mode\": \"0777\"",
        b"\"mode\": \"99999999999\"",
        b"\"kind\": \"kubeconfig\"",
        b"\"new_sha256\": \"\"",
        b"null",
        b"[]",
        b"{}",
        b"\"\\u0000\"",
        b"1e999",
        b"-0",
        b",",
    ],
    run: bundle_json,
    known: &[],
};
