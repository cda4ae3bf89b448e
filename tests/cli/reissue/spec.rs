//! `certs spec` against real cfssl: the round trip, template edits and their errors.

use super::*;

#[test]
fn spec_round_trips_through_real_cfssl() {
    let mut checked = 0;
    for layout in ["binary", "kubeasz-ecdsa"] {
        let dir = fixture(layout);
        let ssl = dir.path().join("etc/kubernetes/ssl");
        // kubeasz keeps ca-config.json on the deploy host only: use the binary tree's profile.
        let config = crate::util::repo().join("fixtures/binary/etc/kubernetes/ssl/ca-config.json");
        let mut leaves: Vec<PathBuf> = std::fs::read_dir(&ssl)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.ends_with(".pem") && !n.ends_with("-key.pem") && n != "ca.pem"
            })
            .collect();
        leaves.sort();
        for leaf in leaves {
            let run = certs(["spec", s(&leaf)]);
            assert_eq!(run.code, 0, "{}: {}", leaf.display(), run.stderr);
            let spec: Value = run.json();
            assert!(
                spec["key"]["algo"].is_string() && spec["key"]["size"].is_number(),
                "{spec}"
            );
            let work = tempfile::tempdir().unwrap();
            let csr_json = work.path().join("x-csr.json");
            std::fs::write(&csr_json, &run.stdout).unwrap();
            let gencert = Command::new("cfssl")
                .args([
                    "gencert",
                    &format!("-ca={}", s(&ssl.join("ca.pem"))),
                    &format!("-ca-key={}", s(&ssl.join("ca-key.pem"))),
                ])
                .arg(format!("-config={}", s(&config)))
                .args(["-profile=kubernetes", s(&csr_json)])
                .output()
                .expect("cfssl is installed (tests/debian.sh installs golang-cfssl)");
            assert!(
                gencert.status.success(),
                "cfssl gencert: {}",
                String::from_utf8_lossy(&gencert.stderr)
            );
            let bare = Command::new("cfssljson")
                .args(["-bare", s(&work.path().join("x"))])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    child.stdin.take().unwrap().write_all(&gencert.stdout)?;
                    child.wait()
                })
                .unwrap();
            assert!(bare.success());
            let regenerated = work.path().join("x.pem");
            let (a, b) = (inspect_one(&leaf), inspect_one(&regenerated));
            let what = leaf.display();
            assert_eq!(
                subject_der(&leaf),
                subject_der(&regenerated),
                "{what}: subject"
            );
            for field in ["subject", "sans", "key", "key_usage", "ext_key_usage"] {
                assert_eq!(a[field], b[field], "{what}: {field}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} round trips");
}

#[test]
fn spec_edits_templates_and_errors() {
    let dir = fixture("binary");
    let k = dir.path().join("etc/kubernetes/ssl/kubernetes.pem");
    let run = certs([
        "spec",
        s(&k),
        "--drop-san",
        "172.72.0.96",
        "--add-san",
        "10.21.22.101",
        "--add-san",
        "kubernetes",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let spec = run.json();
    let hosts: BTreeSet<String> = spec["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert!(
        hosts.contains("10.21.22.101")
            && !hosts.contains("172.72.0.96")
            && hosts.contains("kubernetes")
    );
    assert!(run.stderr.contains("already present"), "{}", run.stderr);
    // Subject from the Subject, never the Issuer.
    assert_eq!(spec["CN"], "kubernetes");
    assert_eq!(
        spec["names"],
        serde_json::json!([{"C": "CN", "ST": "ShangHai", "L": "ShangHai", "O": "k8s", "OU": "System"}])
    );
    let ca = certs(["spec", s(&dir.path().join("etc/kubernetes/ssl/ca.pem"))]).json();
    assert!(ca["ca"]["expiry"].as_str().unwrap().ends_with('h'), "{ca}");
    let multi = certs([
        "spec",
        s(&dir.path().join("etc/kubernetes/ssl/multi-o.pem")),
    ])
    .json();
    let orgs: Vec<&str> = multi["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["O"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, ["k8s-admins", "system:masters"]);

    let t = certs([
        "spec",
        "--template",
        "apiserver",
        "--add-san",
        "10.21.22.101",
    ]);
    assert_eq!(t.code, 0, "{}", t.stderr);
    assert!(t.json()["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "10.21.22.101"));
    assert_eq!(
        certs(["spec", "--template", "ca-config"]).json()["signing"]["profiles"]["kubernetes"]
            ["expiry"],
        "87600h"
    );

    for (args, words) in [
        (
            vec!["spec", s(&k), "--drop-san", "10.9.9.9"],
            "IP:172.72.0.95",
        ),
        (
            vec!["spec", s(&k), "--add-san", "bad name!"],
            "found `bad name!`",
        ),
        (vec!["spec", "--template", "nope"], "kube-proxy"),
    ] {
        let run = certs(&args);
        assert_eq!(run.code, 2, "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(words), "{}", run.stderr);
    }
}
