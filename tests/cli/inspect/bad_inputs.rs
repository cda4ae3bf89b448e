//! Bad inputs are findings and the scan finishes: malformed keys never quoted, deeply nested
//! YAML, symlink fan-out and loops, kubeconfigs referencing files without a certificate.

use super::*;

fn codes_for(report: &Value, suffix: &str) -> BTreeSet<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| ends(&f["path"], suffix))
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn bad_inputs_are_findings_and_the_scan_finishes() {
    let dir = fixture("broken");
    let pki = dir.path().join("etc/kubernetes/pki");
    // What git cannot carry: a symlink loop, a dangling link, a FIFO, an unreadable file.
    std::os::unix::fs::symlink(&pki, pki.join("loop")).unwrap();
    std::os::unix::fs::symlink(pki.join("gone.crt"), pki.join("dangling.crt")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(pki.join("pipe.crt"))
        .status()
        .unwrap()
        .success());
    let unreadable = pki.join("unreadable.crt");
    std::fs::copy(pki.join("ca.crt"), &unreadable).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    let root_user = std::fs::read(&unreadable).is_ok(); // permissions do not bind root

    let before = tree_digest(dir.path());
    let report = inspect_json(dir.path());
    assert_eq!(before, tree_digest(dir.path()), "inspect changed the tree");

    let expect = [
        ("truncated.crt", "unparseable"),
        ("garbage.pem", "unparseable"),
        ("badder.crt", "unparseable"),
        ("random.bin", "unparseable"),
        ("empty.pem", "unparseable"),
        ("loop", "symlink-loop"),
        ("dangling.crt", "unreadable"),
        ("pipe.crt", "not-a-file"),
        ("apiserver.crt", "key-mismatch"),
        ("lonely.key", "key-without-certificate"),
        ("encrypted.key", "key-encrypted"),
        ("legacy-encrypted.key", "key-encrypted"),
        ("expired.crt", "expired"),
        ("not-yet-valid.crt", "not-yet-valid"),
        ("orphan.crt", "issuer-missing"),
    ];
    for (file, code) in expect {
        assert!(
            codes_for(&report, file).contains(code),
            "{file}: expected {code}, found {:?}",
            codes_for(&report, file)
        );
    }
    if !root_user {
        assert!(codes_for(&report, "unreadable.crt").contains("unreadable"));
    }
    // The mismatched certificate has no key; the good ones still have theirs.
    assert!(cert(&report, "pki/apiserver.crt")["key_path"].is_null());
    assert!(ends(
        &cert(&report, "pki/pkcs8.crt")["key_path"],
        "pki/pkcs8.key"
    ));
    assert!(ends(
        &cert(&report, "pki/ed25519.crt")["key_path"],
        "pki/ed25519.key"
    ));
    assert_eq!(cert(&report, "pki/ed25519.crt")["key"]["algo"], "ed25519");
    assert_eq!(cert(&report, "pki/expired.crt")["status"], "expired");
    assert_eq!(
        cert(&report, "pki/not-yet-valid.crt")["status"],
        "not-yet-valid"
    );
    let formats: BTreeSet<&str> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["format"].as_str().unwrap())
        .collect();
    for f in ["pkcs1", "pkcs8", "encrypted-pkcs8", "encrypted-pem"] {
        assert!(formats.contains(f), "key format {f} not seen: {formats:?}");
    }
    // Two certificates in one file, and a DER file.
    let chain: Vec<&Value> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| ends(&c["path"], "chain.pem"))
        .collect();
    assert_eq!(chain.len(), 2);
    assert!(cert(&report, "der/front-proxy-client.der")["signed_by"].is_string());
    assert_eq!(report["csrs"].as_array().unwrap().len(), 1);
}

#[test]
fn a_key_with_a_malformed_begin_line_is_never_quoted() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let key = pki.join("apiserver.key");
    let text = std::fs::read_to_string(&key).unwrap();
    // The BEGIN line lacks one dash.
    let broken = text.replacen("PRIVATE KEY-----", "PRIVATE KEY----", 1);
    assert_ne!(broken, text);
    std::fs::write(&key, &broken).unwrap();
    let body: Vec<&str> = broken
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .collect();
    assert!(body.len() > 10);
    let leaks = |out: &str| {
        body.iter()
            .filter(|l| out.contains(&l[..16]) || out.contains(&l[l.len() - 16..]))
            .count()
    };
    let json = certs(["inspect", pki.to_str().unwrap(), "-o", "json"]);
    let table = certs(["inspect", pki.to_str().unwrap()]);
    let spec = certs(["spec", key.to_str().unwrap()]);
    for (what, run) in [("json", &json), ("table", &table), ("spec", &spec)] {
        assert_eq!(
            leaks(&run.stdout) + leaks(&run.stderr),
            0,
            "{what} quotes the key:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
    let finding = json.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| ends(&f["path"], "apiserver.key"))
        .cloned()
        .unwrap();
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("malformed PEM BEGIN line on line 1"),
        "{finding}"
    );
    assert!(
        table.stdout.contains("malformed PEM BEGIN line on line 1"),
        "{}",
        table.stdout
    );
    assert_eq!(spec.code, 2, "{}", spec.stderr);
    assert_eq!(spec.stderr.lines().count(), 1, "{}", spec.stderr);
    assert!(spec.stderr.contains("line 1"), "{}", spec.stderr);
}

#[test]
fn deeply_nested_yaml_is_refused_quickly_by_every_subcommand() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let pki = root.join("etc/kubernetes/pki");
    let n = 100_000;
    let deep = format!(
        "kind: Config\nclusters: {}{}\n",
        "[".repeat(n),
        "]".repeat(n)
    );
    std::fs::write(pki.join("deep.conf"), &deep).unwrap();
    std::fs::write(root.join("etc/kubernetes/deep.conf"), &deep).unwrap();
    let api = pki.join("apiserver.crt");
    let (r, a) = (root.to_str().unwrap(), api.to_str().unwrap());
    let runs: [(&str, Vec<&str>); 4] = [
        (
            "inspect",
            vec!["inspect", pki.to_str().unwrap(), "-o", "json", "--now", NOW],
        ),
        ("reissue", vec!["reissue", a, "--dry-run", "--now", NOW]),
        (
            "preflight",
            vec!["preflight", "--root", r, "--offline", "--now", NOW],
        ),
        ("spec", vec!["spec", a]),
    ];
    for (what, args) in runs {
        let started = std::time::Instant::now();
        let run = certs(&args);
        let took = started.elapsed();
        assert!(took.as_secs_f64() < 5.0, "{what} took {took:?}");
        assert!(run.code <= 1, "{what}: {}", run.stderr);
    }
    let report = certs(["inspect", pki.to_str().unwrap(), "-o", "json", "--now", NOW]).json();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| ends(&f["path"], "deep.conf"))
        .cloned()
        .unwrap();
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("at most 64 levels"),
        "{finding}"
    );
}

#[test]
fn symlink_fan_out_is_bounded_and_a_self_link_is_a_loop() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    // Two links per level to the next level, eighteen levels: 262,144 paths to the last one.
    let fan = pki.join("fan");
    let levels = 18;
    for k in 0..=levels {
        std::fs::create_dir_all(fan.join(format!("d{k}"))).unwrap();
    }
    for k in 0..levels {
        for name in ["a", "b"] {
            std::os::unix::fs::symlink(
                fan.join(format!("d{}", k + 1)),
                fan.join(format!("d{k}/{name}")),
            )
            .unwrap();
        }
    }
    std::fs::copy(pki.join("ca.crt"), fan.join(format!("d{levels}/ca.crt"))).unwrap();
    std::os::unix::fs::symlink("self.crt", pki.join("self.crt")).unwrap();
    let started = std::time::Instant::now();
    let run = certs([
        "inspect",
        fan.join("d0").to_str().unwrap(),
        pki.to_str().unwrap(),
        "-o",
        "json",
        "--now",
        NOW,
    ]);
    let took = started.elapsed();
    assert!(took.as_secs_f64() < 5.0, "inspect took {took:?}");
    assert!(run.code <= 1, "{}", run.stderr);
    let report = run.json();
    let codes: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(codes.iter().any(|(c, _)| c == "symlink-limit"), "{codes:?}");
    assert!(
        codes
            .iter()
            .any(|(c, m)| c == "symlink-loop" && m.contains("itself")),
        "{codes:?}"
    );
    assert!(
        !codes.iter().any(|(_, m)| m.contains("does not exist")),
        "{codes:?}"
    );
}

#[test]
fn a_kubeconfig_referencing_a_file_without_a_certificate_gets_a_finding() {
    let dir = fixture("kubeadm");
    let etc = dir.path().join("etc/kubernetes");
    let key = etc.join("pki/apiserver-kubelet-client.key");
    let conf = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: c\nusers:\n- name: u\n  user:\n    client-certificate: {}\n    client-key: {}\n",
        key.display(),
        key.display()
    );
    std::fs::write(etc.join("wrong.conf"), conf).unwrap();
    let report = inspect_json(&etc);
    let found: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| ends(&f["path"], "wrong.conf"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["code"], "missing-reference");
    let msg = found[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("client-certificate")
            && msg.contains("holds no certificate")
            && msg.contains("apiserver-kubelet-client.key"),
        "{msg}"
    );
}
