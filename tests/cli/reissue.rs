//! `certs spec` against real cfssl, and `certs reissue` against openssl: the two field
//! scenarios, byte-identical subjects, new keys, kubeconfigs and every bad input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{certs, cfssl_certinfo, fixture, openssl, openssl_sans, s_ref as s, tree_digest};

/// An owned string of a path, for argument lists built from temporaries.
fn o(p: PathBuf) -> String {
    p.to_str().unwrap().to_string()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn subject_der(path: &Path) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let bytes = std::fs::read(path).unwrap();
    let der = pem::parse_many(&bytes)
        .ok()
        .and_then(|b| b.into_iter().find(|b| b.tag() == "CERTIFICATE"))
        .map(|b| b.into_contents())
        .unwrap_or(bytes);
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    c.subject().as_raw().to_vec()
}

fn pubkey(path: &Path) -> String {
    openssl(["x509", "-in", s(path), "-noout", "-pubkey"])
}

fn verify(ca: &Path, cert: &Path) {
    let out = openssl(["verify", "-CAfile", s(ca), s(cert)]);
    assert!(out.trim().ends_with(": OK"), "{out}");
    // And Go's x509 parser, kube-apiserver's, reads it.
    cfssl_certinfo(cert);
}

fn inspect_one(path: &Path) -> Value {
    let run = certs(["inspect", s(path), "-o", "json"]);
    run.json()["certificates"][0].clone()
}

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

/// Seed scenario: a binary/cfssl cluster retires two masters.
#[test]
fn binary_cluster_drops_two_retired_masters() {
    let dir = fixture("binary");
    let ssl = dir.path().join("etc/kubernetes/ssl");
    let out = dir.path().join("bundle");
    let before = tree_digest(&ssl);
    let run = certs([
        "reissue",
        s(&ssl.join("kubernetes.pem")),
        s(&ssl.join("etcd.pem")),
        "--drop-san",
        "172.72.0.96",
        "--drop-san",
        "172.72.0.97",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("- IP:172.72.0.96") && run.stdout.contains("- IP:172.72.0.97"),
        "{}",
        run.stdout
    );
    assert_eq!(before, tree_digest(&ssl), "originals must not be touched");
    let ca = ssl.join("ca.pem");
    for (name, want) in [
        (
            "kubernetes.pem",
            set(&[
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster",
                "DNS:kubernetes.default.svc.cluster.local",
                "IP:127.0.0.1",
                "IP:172.72.0.95",
                "IP:10.254.0.1",
            ]),
        ),
        ("etcd.pem", set(&["IP:127.0.0.1", "IP:172.72.0.95"])),
    ] {
        let new = out.join(name);
        verify(&ca, &new);
        assert_eq!(openssl_sans(&new), want, "{name}");
        assert_eq!(pubkey(&new), pubkey(&ssl.join(name)), "{name}: key kept");
        assert_eq!(
            subject_der(&new),
            subject_der(&ssl.join(name)),
            "{name}: subject"
        );
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("bundle.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let k = files
        .iter()
        .find(|f| f["bundle_path"] == "kubernetes.pem")
        .unwrap();
    assert_eq!(
        k["sans"]["removed"],
        serde_json::json!(["IP:172.72.0.96", "IP:172.72.0.97"])
    );
    assert_eq!(k["components"], serde_json::json!(["kube-apiserver"]));
    assert!(k["target"]
        .as_str()
        .unwrap()
        .ends_with("ssl/kubernetes.pem"));
    assert_ne!(k["old_serial"], k["new_serial"]);
}

/// Seed scenario: a kubeadm node grows an HAProxy VIP.
#[test]
fn kubeadm_apiserver_gains_a_vip_keeping_sans_and_key() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let out = dir.path().join("bundle");
    let old = pki.join("apiserver.crt");
    let run = certs([
        "reissue",
        s(&old),
        "--add-san",
        "10.21.22.101",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let new = out.join("apiserver.crt");
    verify(&pki.join("ca.crt"), &new);
    let mut want = openssl_sans(&old);
    want.insert("IP:10.21.22.101".into());
    assert_eq!(openssl_sans(&new), want);
    assert_eq!(pubkey(&new), pubkey(&old));
    assert!(
        !out.join("apiserver.key").exists(),
        "no key without --new-key"
    );
    let (a, b) = (inspect_one(&old), inspect_one(&new));
    for field in [
        "subject",
        "key_usage",
        "ext_key_usage",
        "is_ca",
        "subject_key_id",
        "authority_key_id",
    ] {
        assert_eq!(a[field], b[field], "{field}");
    }
    // A reissue of the etcd certificates finds the etcd CA, not the cluster CA.
    let run = certs([
        "reissue",
        s(&pki.join("etcd/server.crt")),
        s(&pki.join("etcd/peer.crt")),
        "--add-san",
        "10.21.22.74",
        "--out",
        s(&dir.path().join("b2")),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    verify(&pki.join("etcd/ca.crt"), &dir.path().join("b2/server.crt"));
    assert!(run.stdout.contains("etcd/ca.crt"), "{}", run.stdout);
}

#[test]
fn multi_valued_subject_is_byte_identical() {
    let dir = fixture("binary");
    let ssl = dir.path().join("etc/kubernetes/ssl");
    let out = dir.path().join("b");
    let run = certs([
        "reissue",
        s(&ssl.join("multi-o.pem")),
        s(&ssl.join("admin.pem")),
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for name in ["multi-o.pem", "admin.pem"] {
        assert_eq!(
            subject_der(&out.join(name)),
            subject_der(&ssl.join(name)),
            "{name}"
        );
        verify(&ssl.join("ca.pem"), &out.join(name));
    }
}

#[test]
fn new_keys_keep_their_format_and_are_private() {
    use std::os::unix::fs::PermissionsExt;
    for (layout, cert, key, label) in [
        (
            "kubeadm",
            "etc/kubernetes/pki/apiserver.crt",
            "apiserver.key",
            "RSA PRIVATE KEY",
        ),
        (
            "kubeasz-ecdsa",
            "etc/kubernetes/ssl/kubernetes.pem",
            "kubernetes-key.pem",
            "EC PRIVATE KEY",
        ),
    ] {
        let dir = fixture(layout);
        let out = dir.path().join("b");
        let run = certs([
            "reissue",
            s(&dir.path().join(cert)),
            "--new-key",
            "--out",
            s(&out),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let new_key = out.join(key);
        let text = std::fs::read_to_string(&new_key).unwrap();
        assert!(
            text.starts_with(&format!("-----BEGIN {label}-----")),
            "{layout}: {text:.40}"
        );
        assert_eq!(
            std::fs::metadata(&new_key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            !run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"),
            "keys are never printed"
        );
        let new_cert = out.join(Path::new(cert).file_name().unwrap());
        let from_key = openssl(["pkey", "-in", s(&new_key), "-pubout"]);
        assert_eq!(
            from_key,
            pubkey(&new_cert),
            "{layout}: new key pairs with the new certificate"
        );
        assert_ne!(pubkey(&new_cert), pubkey(&dir.path().join(cert)));
        let manifest: Value =
            serde_json::from_slice(&std::fs::read(out.join("bundle.json")).unwrap()).unwrap();
        assert!(manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "private-key" && f["mode"] == "0600"));
        assert!(!manifest.to_string().contains("PRIVATE KEY"));
    }
}

#[test]
fn kubeconfig_client_certificate_is_reissued_in_place() {
    let dir = fixture("kubeadm");
    let conf = dir.path().join("etc/kubernetes/admin.conf");
    let out = dir.path().join("b");
    let run = certs(["reissue", s(&conf), "--out", s(&out)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let new = std::fs::read_to_string(out.join("admin.conf")).unwrap();
    let old = std::fs::read_to_string(&conf).unwrap();
    let changed: Vec<_> = old
        .lines()
        .zip(new.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1, "only client-certificate-data changes");
    assert!(changed[0]
        .1
        .trim_start()
        .starts_with("client-certificate-data:"));
    let report = certs(["inspect", s(&out.join("admin.conf")), "-o", "json"]).json();
    let user = &report["kubeconfigs"][0]["users"][0]["client_certificate"];
    assert_eq!(user["key_matches"], true, "{user}");
    // With --new-key both data fields change, and the embedded key keeps kubeadm's PKCS#1.
    let out2 = dir.path().join("b2");
    let run = certs(["reissue", s(&conf), "--new-key", "--out", s(&out2)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = certs(["inspect", s(&out2.join("admin.conf")), "-o", "json"]).json();
    assert_eq!(
        report["kubeconfigs"][0]["users"][0]["client_certificate"]["key_matches"],
        true
    );
    let key = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["private"] == true)
        .unwrap();
    assert_eq!(key["format"], "pkcs1");
    let manifest = std::fs::read_to_string(out2.join("bundle.json")).unwrap();
    assert!(manifest.contains("\"mode\": \"0600\""), "{manifest}");
}

/// The user entries of a kubeconfig: (name, client certificate DER, client-certificate-data as
/// written), decoded the way a client does.
fn kubeconfig_users(text: &str) -> Vec<(String, Vec<u8>, String)> {
    use base64::Engine;
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).unwrap();
    doc["users"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|u| {
            let data = u["user"]["client-certificate-data"]
                .as_str()
                .unwrap()
                .to_string();
            let pem = base64::engine::general_purpose::STANDARD
                .decode(&data)
                .unwrap();
            let der = pem::parse(pem).unwrap().into_contents();
            (u["name"].as_str().unwrap().to_string(), der, data)
        })
        .collect()
}

#[test]
fn kubeconfig_user_written_before_its_name_gets_its_own_new_certificate() {
    let dir = fixture("kubeadm");
    let etc = dir.path().join("etc/kubernetes");
    let field = |file: &str, key: &str| {
        let text = std::fs::read_to_string(etc.join(file)).unwrap();
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap();
        line.split_once(": ").unwrap().1.trim().to_string()
    };
    let admin = std::fs::read_to_string(etc.join("admin.conf")).unwrap();
    let clusters = &admin[admin.find("clusters:").unwrap()..admin.find("contexts:").unwrap()];
    let text = format!(
        "apiVersion: v1\n{clusters}kind: Config\nusers:\n- user: {{client-certificate-data: {}, client-key-data: {}}}\n  name: alice\n- name: bob\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        field("admin.conf", "client-certificate-data:"),
        field("admin.conf", "client-key-data:"),
        field("controller-manager.conf", "client-certificate-data:"),
        field("controller-manager.conf", "client-key-data:"),
    );
    let conf = etc.join("two-users.conf");
    std::fs::write(&conf, &text).unwrap();
    let before = kubeconfig_users(&text);
    let out = dir.path().join("b");
    let run = certs(["reissue", s(&conf), "--out", s(&out), "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = std::fs::read_to_string(out.join("two-users.conf")).unwrap();
    assert_eq!(written.lines().count(), text.lines().count(), "{written}");
    assert_eq!(
        written.matches("client-certificate-data").count(),
        2,
        "{written}"
    );
    let after = kubeconfig_users(&written);
    let report = run.json();
    for ((name, old_der, old_data), (new_name, new_der, _)) in before.iter().zip(&after) {
        assert_eq!(name, new_name);
        assert!(old_der != new_der, "{name} kept the old certificate");
        // Each user's new certificate is its own: same subject as before, not the other's.
        use x509_parser::prelude::FromDer;
        let (_, old) = x509_parser::certificate::X509Certificate::from_der(old_der).unwrap();
        let (_, new) = x509_parser::certificate::X509Certificate::from_der(new_der).unwrap();
        assert_eq!(old.subject().as_raw(), new.subject().as_raw(), "{name}");
        assert!(
            !written.contains(old_data.as_str()),
            "{name}'s old data left in"
        );
        let serial = new.raw_serial_as_string().replace(':', "").to_uppercase();
        let reported = report["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["user"] == name.as_str())
            .unwrap();
        assert_eq!(
            reported["new_serial"]
                .as_str()
                .unwrap()
                .trim_start_matches('0'),
            serial.trim_start_matches('0'),
            "{name}: the report and the bundle disagree"
        );
    }
    // The layout is kept: alice's entry is still written in flow style before her name.
    assert!(
        written.contains("- user: {client-certificate-data: "),
        "{written}"
    );
}

#[test]
fn dry_run_writes_nothing() {
    let dir = fixture("kubespray");
    let ssl = dir.path().join("etc/ssl/etcd/ssl");
    let before = tree_digest(dir.path());
    let targets: Vec<String> = ["member", "admin", "node"]
        .iter()
        .flat_map(|k| {
            (1..=3)
                .map(|n| o(ssl.join(format!("{k}-node{n}.pem"))))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut args = vec![
        "reissue".to_string(),
        "--drop-san".into(),
        "10.6.0.13".into(),
        "--drop-san".into(),
        "node3".into(),
        "--dry-run".into(),
    ];
    args.extend(targets.clone());
    let run = certs(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.matches("- IP:10.6.0.13").count(),
        9,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("dry run"));
    assert_eq!(before, tree_digest(dir.path()));
    assert!(std::fs::read_dir(std::env::current_dir().unwrap())
        .unwrap()
        .all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("certs-bundle-")));
}

#[test]
fn bad_inputs_give_one_line_and_write_nothing() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let broken = fixture("broken");
    let bpki = broken.path().join("etc/kubernetes/pki");
    let api = pki.join("apiserver.crt");
    let out = dir.path().join("never");
    let file = pki.join("ca.crt");
    let unwritable = file.join("sub"); // a directory cannot be made under a file
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--ca".into(),
                o(pki.join("ca.crt")),
                "--ca-key".into(),
                o(pki.join("front-proxy-ca.key")),
            ],
            "expected the private key of CA",
        ),
        (
            vec![
                "--ca".into(),
                o(pki.join("etcd/ca.crt")),
                "--ca-key".into(),
                o(pki.join("etcd/ca.key")),
            ],
            "did not sign",
        ),
        (
            vec![
                "--ca".into(),
                o(bpki.join("encrypted.crt")),
                "--ca-key".into(),
                o(bpki.join("encrypted.key")),
            ],
            "encrypted",
        ),
        (vec!["--drop-san".into(), "10.9.9.9".into()], "DNS:master1"),
        (
            vec!["--add-san".into(), "no spaces allowed".into()],
            "found `no spaces allowed`",
        ),
        (
            vec!["--now".into(), "2035-06-01T00:00:00Z".into()],
            "expired",
        ),
    ];
    let before = tree_digest(dir.path());
    for (extra, words) in cases {
        let mut args: Vec<String> = vec![
            "reissue".into(),
            o(api.clone()),
            "--out".into(),
            o(out.clone()),
        ];
        args.extend(extra);
        let run = certs(&args);
        assert_ne!(run.code, 0, "{args:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(words), "{args:?}: {}", run.stderr);
        assert!(!out.exists(), "{args:?} wrote a bundle");
        assert_eq!(before, tree_digest(dir.path()), "{args:?} touched the tree");
    }
    let run = certs(["reissue", s(&api), "--out", s(&unwritable)]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("cannot write"), "{}", run.stderr);
    assert_eq!(before, tree_digest(dir.path()));
    // An existing, non-empty --out is never overwritten.
    let run = certs(["reissue", s(&api), "--out", s(&pki)]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("never overwritten"), "{}", run.stderr);
    assert_eq!(before, tree_digest(dir.path()));
    let run = certs(["reissue", s(&bpki.join("garbage.pem"))]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("expected a certificate"),
        "{}",
        run.stderr
    );
}

#[test]
fn sans_go_cannot_parse_are_refused_and_idns_become_a_labels() {
    let dir = fixture("kubeadm");
    let api = dir.path().join("etc/kubernetes/pki/apiserver.crt");
    let before = tree_digest(dir.path());
    let out = dir.path().join("never");
    for (bad, says) in [
        ("http://a b", "http://a b"),
        ("ü@bücher.de", "ASCII"),
        ("http://ü.de/ü", "ASCII"),
        ("http://a..b/", "empty label"),
        ("http://a.b:x/", "port"),
        ("http://a.b/%zz", "%"),
        ("ops@@x.de", "email"),
        ("bad\u{7}@x.de", "email"),
    ] {
        let run = certs(["reissue", s(&api), "--add-san", bad, "--out", s(&out)]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{bad}: {}", run.stderr);
        assert!(!out.exists(), "{bad} wrote a bundle");
        assert_eq!(before, tree_digest(dir.path()), "{bad} touched the tree");
    }
    let b = dir.path().join("b");
    let run = certs([
        "reissue",
        s(&api),
        "--add-san",
        "http://ü.de",
        "--add-san",
        "ops@bücher.de",
        "--add-san",
        "Bücher.example",
        "--out",
        s(&b),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = b.join("apiserver.crt");
    verify(&dir.path().join("etc/kubernetes/pki/ca.crt"), &written);
    // Go parses it (cfssl lists DNS and IP SANs only; openssl shows the rest).
    let info = cfssl_certinfo(&written);
    assert!(
        info["sans"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "xn--bcher-kva.example"),
        "{info}"
    );
    let sans = openssl_sans(&written);
    for want in [
        "URI:http://xn--tda.de",
        "email:ops@xn--bcher-kva.de",
        "DNS:xn--bcher-kva.example",
    ] {
        assert!(sans.contains(want), "{want} not in {sans:?}");
    }
}

#[test]
fn pkcs8_ca_key_and_validity() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    // The same CA key as PKCS#8 (`BEGIN PRIVATE KEY`), as some installers write it.
    let pkcs8 = dir.path().join("ca-pkcs8.key");
    openssl([
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        s(&pki.join("ca.key")),
        "-out",
        s(&pkcs8),
    ]);
    assert!(std::fs::read_to_string(&pkcs8)
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    let out = dir.path().join("b");
    let run = certs([
        "reissue",
        s(&pki.join("apiserver.crt")),
        "--ca",
        s(&pki.join("ca.crt")),
        "--ca-key",
        s(&pkcs8),
        "--validity",
        "365d",
        "--now",
        "2026-06-01T00:00:00Z",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    verify(&pki.join("ca.crt"), &out.join("apiserver.crt"));
    let c = inspect_one(&out.join("apiserver.crt"));
    // Backdated five minutes, valid 365 days from there.
    assert_eq!(c["not_before"], "2026-05-31T23:55:00Z");
    assert_eq!(c["not_after"], "2027-05-31T23:55:00Z");
}

#[test]
fn validities_and_cas_that_make_unusable_certificates_are_refused() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let api = pki.join("apiserver.crt");
    let out = dir.path().join("never");
    let before = tree_digest(dir.path());
    for (args, says) in [
        (vec!["--validity", "4m"], "at least a day"),
        (vec!["--validity", "0s"], "at least a day"),
        (vec!["--validity", "18446744073709551615s"], "at most 1000y"),
        // The fixture CA ends 2035-01-01: a day before, nothing worth installing can be signed.
        (vec!["--now", "2034-12-31T12:00:00Z"], "renew the CA first"),
        // Before the CA's notBefore (2025-01-01).
        (vec!["--now", "2024-06-01T00:00:00Z"], "not valid until"),
    ] {
        let mut all = vec!["reissue", s(&api), "--out", s(&out)];
        all.extend(args.iter().copied());
        let run = certs(&all);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
        assert!(!out.exists(), "{args:?} wrote a bundle");
        assert_eq!(before, tree_digest(dir.path()), "{args:?}");
    }
    let run = certs(["inspect", s(&pki), "--warn-within", "106751991167301d"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("at most 1000y"), "{}", run.stderr);

    // A CA whose keyUsage lacks keyCertSign: what it signs does not verify.
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = rcgen::CertificateParams::new(vec![]).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "no-cert-sign");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["leaf.example".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let bad = dir.path().join("bad-ca");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("ca.crt"), ca_cert.pem()).unwrap();
    std::fs::write(bad.join("ca.key"), ca_key.serialize_pem()).unwrap();
    std::fs::write(bad.join("leaf.crt"), leaf.pem()).unwrap();
    let run = certs([
        "reissue",
        s(&bad.join("leaf.crt")),
        "--ca",
        s(&bad.join("ca.crt")),
        "--ca-key",
        s(&bad.join("ca.key")),
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("keyCertSign"), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn bare_file_names_from_inside_the_pki_directory() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let run = crate::util::certs_in(
        &pki,
        [
            "reissue",
            "apiserver.crt",
            "etcd/server.crt",
            "--add-san",
            "10.21.22.101",
            "--new-key",
            "--out",
            "b",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    verify(&pki.join("ca.crt"), &pki.join("b/apiserver.crt"));
    verify(&pki.join("etcd/ca.crt"), &pki.join("b/etcd/server.crt"));
    assert!(pki.join("b/apiserver.key").exists() && pki.join("b/etcd/server.key").exists());
    let spec = crate::util::certs_in(&pki, ["spec", "apiserver.crt"]);
    assert_eq!(spec.code, 0, "{}", spec.stderr);
}

/// `-o json` for automation: an edit that changes nothing (a SAN already there, in any of its
/// spellings, or dropped and added back) is `unchanged`, writes nothing and exits 0; a real one
/// is `reissued` with its serials, SAN diff and octal mode; one bundle holds only those.
#[test]
fn json_results_tell_changed_from_ok() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let api = pki.join("apiserver.crt");
    let out = dir.path().join("b");
    let before = tree_digest(dir.path());
    for edit in [
        vec!["--add-san", "10.21.22.73"],
        vec!["--add-san", "IP:10.21.22.73", "--add-san", "MASTER1"],
        vec!["--drop-san", "10.21.22.73", "--add-san", "10.21.22.73"],
    ] {
        let mut args = vec!["reissue", s(&api), "--out", s(&out), "-o", "json"];
        args.extend(edit.iter().copied());
        let run = certs(&args);
        assert_eq!(run.code, 0, "{edit:?}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "{edit:?}: {}", run.stderr);
        let doc = run.json();
        assert_eq!(doc["schema"], "certs.reissue/v1");
        assert_eq!(doc["changed"], false, "{edit:?}");
        assert_eq!(doc["bundle"], Value::Null);
        assert_eq!(doc["counts"]["unchanged"], 1);
        let f = &doc["files"][0];
        assert_eq!(f["action"], "unchanged", "{edit:?}");
        assert!(
            f["reason"].as_str().unwrap().contains("IP:10.21.22.73"),
            "{f}"
        );
        assert_eq!(f["new_serial"], Value::Null);
        assert!(f["sans"]["added"].as_array().unwrap().is_empty());
        assert!(f["sans"]["removed"].as_array().unwrap().is_empty());
        assert!(!out.exists(), "{edit:?} made the bundle directory");
        assert_eq!(before, tree_digest(dir.path()), "{edit:?}");
    }
    let run = certs([
        "reissue",
        s(&api),
        "--add-san",
        "10.21.22.73",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("unchanged") && run.stdout.contains("no bundle written"),
        "{}",
        run.stdout
    );
    assert!(!out.exists());

    // 10.96.0.1 is on the apiserver certificate, not on etcd's: one unchanged, one reissued.
    let server = pki.join("etcd/server.crt");
    let run = certs([
        "reissue",
        s(&api),
        s(&server),
        "--add-san",
        "10.96.0.1",
        "--out",
        s(&out),
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(
        doc["bundle"],
        std::path::absolute(&out).unwrap().to_str().unwrap()
    );
    let (a, b) = (&doc["files"][0], &doc["files"][1]);
    assert_eq!(a["action"], "unchanged");
    assert_eq!(b["action"], "reissued");
    assert_eq!(b["sans"]["added"], serde_json::json!(["IP:10.96.0.1"]));
    assert_eq!(b["sans"]["removed"], serde_json::json!([]));
    assert_ne!(b["old_serial"], b["new_serial"]);
    assert_eq!(b["key"], "kept");
    assert!(b["ca"].as_str().unwrap().ends_with("etcd/ca.crt"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&server).unwrap().permissions().mode() & 0o7777;
    assert_eq!(b["mode"], format!("{mode:04o}"));
    assert_eq!(b["bundle_path"], "server.crt");
    verify(&pki.join("etcd/ca.crt"), &out.join("server.crt"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["files"][0]["new_serial"], b["new_serial"]);
}

/// A refused target refuses the run: nothing is written, exit 2, and the document still says
/// what happened to each target (the others were held back, not reissued).
#[test]
fn json_refusal_writes_nothing() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let out = dir.path().join("b");
    let run = certs([
        "reissue",
        s(&pki.join("apiserver.crt")),
        s(&pki.join("etcd/server.crt")),
        "--drop-san",
        "10.96.0.1",
        "--out",
        s(&out),
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["counts"]["refused"], 2);
    let (a, b) = (&doc["files"][0], &doc["files"][1]);
    assert!(a["reason"].as_str().unwrap().contains("not written"), "{a}");
    assert_eq!(a["new_serial"], Value::Null);
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("cannot drop IP:10.96.0.1"),
        "{b}"
    );
    assert!(run
        .stderr
        .lines()
        .next()
        .unwrap()
        .contains("etcd/server.crt"));
    assert!(!out.exists());
}

/// `reissue DIR` says what it takes, and points to `renew` for a whole directory.
#[test]
fn a_directory_points_to_renew() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let run = certs(["reissue", s(&pki), "--add-san", "10.21.22.101"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is a directory") && run.stderr.contains("certs renew"),
        "{}",
        run.stderr
    );
}

/// Warnings go to stderr, never stdout, in both output forms.
#[test]
fn warnings_go_to_stderr() {
    let dir = fixture("kubeadm");
    let cert = dir.path().join("etc/kubernetes/pki/front-proxy-client.crt");
    for (form, out) in [("text", "b1"), ("json", "b2")] {
        let run = certs([
            "reissue",
            s(&cert),
            "--validity",
            "20y",
            "--out",
            s(&dir.path().join(out)),
            "-o",
            form,
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("warning: ") && run.stderr.contains("clamped"));
        assert!(
            !run.stdout.contains("clamped") || form == "json",
            "{}",
            run.stdout
        );
        if form == "json" {
            let doc = run.json();
            assert!(doc["files"][0]["warnings"][0]
                .as_str()
                .unwrap()
                .contains("clamped"));
        }
    }
}
