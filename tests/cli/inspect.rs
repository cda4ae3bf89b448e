//! `certs inspect` on every fixture layout, against openssl's reading of the same files.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use crate::util::{cert, certs, ends, fixture, openssl, tree_digest, NOW};

const LAYOUTS: &[&str] = &["kubeadm", "kubespray", "binary", "kubeasz-ecdsa", "broken"];

fn inspect_json(dir: &Path) -> Value {
    let run = certs(["inspect", dir.to_str().unwrap(), "-o", "json", "--now", NOW]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    run.json()
}

/// The DER of the certificate a JSON entry describes, taken from the file the way openssl
/// cannot (the n-th PEM block, or base64 embedded in a kubeconfig).
fn der_of(entry: &Value) -> Vec<u8> {
    let path = entry["path"].as_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let index = entry["index"].as_u64().unwrap() as usize;
    if let Some(field) = entry["embedded"].as_str() {
        // users[NAME].client-certificate-data: the value on the line after that user's name.
        let text = String::from_utf8(bytes).unwrap();
        let user = field
            .trim_start_matches("users[")
            .split(']')
            .next()
            .unwrap();
        let after_user = &text[text.find(&format!("name: {user}")).unwrap()..];
        let line = after_user
            .lines()
            .find(|l| l.trim_start().starts_with("client-certificate-data:"))
            .unwrap();
        let b64 = line.split(':').nth(1).unwrap().trim();
        use base64::Engine;
        let pem_text = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        return pem::parse(pem_text).unwrap().into_contents();
    }
    match pem::parse_many(&bytes) {
        Ok(blocks) if !blocks.is_empty() => blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .nth(index)
            .unwrap()
            .into_contents(),
        _ => bytes,
    }
}

struct OpensslView {
    subject: String,
    not_after: String,
    sans: BTreeSet<String>,
    key_bits: u64,
    serial: String,
}

fn openssl_view(der: &[u8]) -> OpensslView {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), der).unwrap();
    let p = tmp.path().to_str().unwrap();
    let head = openssl([
        "x509",
        "-inform",
        "DER",
        "-in",
        p,
        "-noout",
        "-subject",
        "-nameopt",
        "sep_comma_plus_space,sname,utf8",
        "-enddate",
        "-dateopt",
        "iso_8601",
        "-serial",
        "-ext",
        "subjectAltName",
    ]);
    let text = openssl(["x509", "-inform", "DER", "-in", p, "-noout", "-text"]);
    let field = |prefix: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {head}"))
            .trim()
            .to_string()
    };
    let mut sans = BTreeSet::new();
    let mut lines = head.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("X509v3 Subject Alternative Name") {
            for name in lines.next().unwrap().split(", ") {
                let name = name.trim();
                if let Some(ip) = name.strip_prefix("IP Address:") {
                    sans.insert(ip.parse::<IpAddr>().unwrap().to_string());
                } else if let Some(dns) = name.strip_prefix("DNS:") {
                    sans.insert(dns.to_string());
                } else {
                    sans.insert(name.to_string());
                }
            }
        }
    }
    let key_bits = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Public-Key: (")
                .map(|r| r.split(' ').next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| {
            assert!(text.contains("ED25519 Public-Key"), "no key size in {text}");
            256
        });
    // "2034-12-31 00:00:00Z" → RFC 3339
    let not_after = field("notAfter=").replacen(' ', "T", 1);
    OpensslView {
        subject: field("subject="),
        not_after,
        sans,
        key_bits,
        serial: field("serial="),
    }
}

#[test]
fn every_certificate_matches_openssl() {
    let mut checked = 0;
    for layout in LAYOUTS {
        let dir = fixture(layout);
        let report = inspect_json(dir.path());
        let entries = report["certificates"].as_array().unwrap();
        assert!(!entries.is_empty(), "{layout}: no certificates found");
        for entry in entries {
            let view = openssl_view(&der_of(entry));
            let what = format!("{layout}: {} {}", entry["path"], entry["embedded"]);
            assert_eq!(entry["subject"], view.subject.as_str(), "{what}");
            assert_eq!(entry["not_after"], view.not_after.as_str(), "{what}");
            assert_eq!(entry["serial"], view.serial.as_str(), "{what}");
            assert_eq!(entry["key"]["size"], view.key_bits, "{what}");
            let ours: BTreeSet<String> = ["dns", "ip", "email", "uri", "other"]
                .iter()
                .flat_map(|k| {
                    entry["sans"][k]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap().to_string())
                })
                .collect();
            assert_eq!(ours, view.sans, "{what}");
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} certificates checked");
}

fn link(report: &Value, cert_suffix: &str) -> (String, String) {
    let c = cert(report, cert_suffix);
    let s = |v: &Value| {
        v.as_str()
            .map(|s| s.rsplit("fixtures").next().unwrap_or(s).to_string())
            .unwrap_or("null".into())
    };
    (s(&c["signed_by"]), s(&c["key_path"]))
}

#[test]
fn kubeadm_three_cas_and_every_key() {
    let dir = fixture("kubeadm");
    let root = dir.path().to_str().unwrap();
    let run = certs(["inspect", root, "--root", root, "-o", "json", "--now", NOW]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let pki = "etc/kubernetes/pki";
    let table = [
        ("pki/apiserver.crt", "pki/ca.crt", "pki/apiserver.key"),
        (
            "pki/apiserver-kubelet-client.crt",
            "pki/ca.crt",
            "pki/apiserver-kubelet-client.key",
        ),
        (
            "pki/apiserver-etcd-client.crt",
            "pki/etcd/ca.crt",
            "pki/apiserver-etcd-client.key",
        ),
        (
            "pki/front-proxy-client.crt",
            "pki/front-proxy-ca.crt",
            "pki/front-proxy-client.key",
        ),
        (
            "pki/etcd/server.crt",
            "pki/etcd/ca.crt",
            "pki/etcd/server.key",
        ),
        ("pki/etcd/peer.crt", "pki/etcd/ca.crt", "pki/etcd/peer.key"),
        (
            "pki/etcd/healthcheck-client.crt",
            "pki/etcd/ca.crt",
            "pki/etcd/healthcheck-client.key",
        ),
        ("pki/ca.crt", "pki/ca.crt", "pki/ca.key"),
        ("pki/etcd/ca.crt", "pki/etcd/ca.crt", "pki/etcd/ca.key"),
        (
            "pki/front-proxy-ca.crt",
            "pki/front-proxy-ca.crt",
            "pki/front-proxy-ca.key",
        ),
        (
            "kubelet/pki/kubelet-client-current.pem",
            "pki/ca.crt",
            "kubelet/pki/kubelet-client-current.pem",
        ),
    ];
    for (c, ca, key) in table {
        let (signed_by, key_path) = link(&report, c);
        assert!(
            signed_by.ends_with(ca),
            "{c}: signed_by {signed_by}, expected *{ca}"
        );
        assert!(
            key_path.ends_with(key),
            "{c}: key_path {key_path}, expected *{key}"
        );
    }
    let roles: Vec<(&str, &str)> = vec![
        ("pki/apiserver.crt", "apiserver"),
        ("pki/etcd/ca.crt", "etcd-ca"),
        ("pki/front-proxy-ca.crt", "front-proxy-ca"),
        ("pki/ca.crt", "ca"),
        ("pki/etcd/peer.crt", "etcd-peer"),
        ("pki/etcd/healthcheck-client.crt", "etcd-client"),
    ];
    for (c, role) in roles {
        assert_eq!(cert(&report, c)["role"], role, "{c}");
    }
    // Embedded client certificates: signed by the cluster CA, paired with the embedded key.
    let admin = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| ends(&c["path"], "admin.conf") && !ends(&c["path"], "super-admin.conf"))
        .expect("admin.conf client certificate");
    assert_eq!(admin["role"], "admin");
    assert!(
        ends(&admin["signed_by"], &format!("{pki}/ca.crt")),
        "{}",
        admin["signed_by"]
    );
    assert!(
        ends(
            &admin["key_path"],
            "admin.conf#users[kubernetes-admin].client-key-data"
        ),
        "{}",
        admin["key_path"]
    );
    let kubelet_conf = report["kubeconfigs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| ends(&k["path"], "kubelet.conf"))
        .expect("kubelet.conf");
    assert_eq!(
        kubelet_conf["users"][0]["client_certificate"]["source"],
        "file"
    );
    assert_eq!(kubelet_conf["server"], "https://10.21.22.73:6443");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["severity"] != "error"),
        "{}",
        report["findings"]
    );
}

#[test]
fn kubespray_and_cfssl_layouts_link() {
    let dir = fixture("kubespray");
    let report = inspect_json(dir.path());
    for host in ["node1", "node2", "node3"] {
        for (kind, role) in [
            ("member", "etcd-server"),
            ("admin", "etcd-client"),
            ("node", "etcd-client"),
        ] {
            let c = format!("etc/ssl/etcd/ssl/{kind}-{host}.pem");
            let (signed_by, key) = link(&report, &c);
            assert!(
                signed_by.ends_with("etc/ssl/etcd/ssl/ca.pem"),
                "{c}: {signed_by}"
            );
            assert!(
                key.ends_with(&format!("{kind}-{host}-key.pem")),
                "{c}: {key}"
            );
            assert_eq!(cert(&report, &c)["role"], role);
        }
    }
    assert_eq!(cert(&report, "etc/ssl/etcd/ssl/ca.pem")["role"], "etcd-ca");
    let (signed_by, _) = link(&report, "etc/kubernetes/ssl/apiserver.crt");
    assert!(
        signed_by.ends_with("etc/kubernetes/ssl/ca.crt"),
        "{signed_by}"
    );

    for layout in ["binary", "kubeasz-ecdsa"] {
        let dir = fixture(layout);
        let report = inspect_json(dir.path());
        for name in ["kubernetes", "etcd", "admin"] {
            let (signed_by, key) = link(&report, &format!("ssl/{name}.pem"));
            assert!(
                signed_by.ends_with("ssl/ca.pem"),
                "{layout} {name}: {signed_by}"
            );
            assert!(
                key.ends_with(&format!("ssl/{name}-key.pem")),
                "{layout} {name}: {key}"
            );
        }
        assert_eq!(cert(&report, "ssl/kubernetes.pem")["role"], "apiserver");
        // cfssl gives kubernetes.pem the CA's own subject and no AKI: only the signature check
        // tells it is not self-signed.
        assert_eq!(cert(&report, "ssl/kubernetes.pem")["self_signed"], false);
        assert_eq!(cert(&report, "ssl/ca.pem")["self_signed"], true);
        assert_eq!(cert(&report, "ssl/etcd.pem")["role"], "etcd-server");
        if layout == "binary" {
            // The field articles keep cfssl's csr.json and ca-config.json beside the pems.
            let kinds: BTreeSet<&str> = report["cfssl"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["kind"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, BTreeSet::from(["csr", "ca-config"]));
        }
    }
    let dir = fixture("kubeasz-ecdsa");
    let report = inspect_json(dir.path());
    assert_eq!(
        cert(&report, "ssl/kubernetes.pem")["key"],
        serde_json::json!({"algo": "ecdsa", "size": 256})
    );
    let sec1 = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| ends(&k["path"], "ssl/kubernetes-key.pem"))
        .unwrap();
    assert_eq!(sec1["format"], "sec1");
}

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

#[test]
fn warn_within_sets_the_exit_code() {
    let dir = fixture("kubeadm");
    let path = dir.path().to_str().unwrap();
    let quiet = certs(["inspect", path, "--now", NOW, "--warn-within", "30d"]);
    assert_eq!(quiet.code, 0, "{}{}", quiet.stdout, quiet.stderr);
    // Eleven months before the leaves' end: within a year, not within 30 days.
    let late = certs([
        "inspect",
        path,
        "--now",
        "2034-02-01T00:00:00Z",
        "--warn-within",
        "365d",
        "-o",
        "json",
    ]);
    assert_eq!(late.code, 1);
    assert_eq!(
        cert(&late.json(), "pki/apiserver.crt")["status"],
        "expiring"
    );
    // Without --warn-within problems are shown but do not fail the run.
    let broken = fixture("broken");
    let shown = certs(["inspect", broken.path().to_str().unwrap(), "--now", NOW]);
    assert_eq!(shown.code, 0);
    assert!(shown.stdout.contains("key-mismatch"));
    let failed = certs([
        "inspect",
        broken.path().to_str().unwrap(),
        "--now",
        NOW,
        "--warn-within",
        "1d",
    ]);
    assert_eq!(failed.code, 1);
}

#[test]
fn unreadable_root_and_bad_arguments_exit_2() {
    let run = certs(["inspect", "/nonexistent/etc/kubernetes"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/etc/kubernetes"),
        "{}",
        run.stderr
    );
    let empty = tempfile::tempdir().unwrap();
    let run = certs(["inspect", "--root", empty.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("none of the standard locations exists"),
        "{}",
        run.stderr
    );
    let run = certs(["inspect", "--warn-within", "soon", "."]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("found `soon`"), "{}", run.stderr);
    let run = certs(["inspect", "--now", "yesterday", "."]);
    assert_eq!(run.code, 2);
    let run = certs(["inspect", "https://127.0.0.1:1"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--ca"), "{}", run.stderr);
}

#[test]
fn root_reads_standard_locations_and_follows_kubeconfig_references() {
    let dir = fixture("kubeadm");
    let run = certs([
        "inspect",
        "--root",
        dir.path().to_str().unwrap(),
        "--now",
        NOW,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Paths are the ones JSON and preflight show: under the root, as on this machine.
    let root = dir.path().to_str().unwrap();
    assert!(
        run.stdout
            .contains(&format!("{root}/etc/kubernetes/pki/apiserver.crt")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "{root}/var/lib/kubelet/pki/kubelet-client-current.pem"
    )));
    // Given only /etc/kubernetes, kubelet.conf's absolute reference is still read under --root.
    let etc = dir.path().join("etc/kubernetes");
    let run = certs([
        "inspect",
        etc.to_str().unwrap(),
        "--root",
        dir.path().to_str().unwrap(),
        "--now",
        NOW,
        "-o",
        "json",
    ]);
    let report = run.json();
    assert!(ends(
        &cert(&report, "kubelet-client-current.pem")["signed_by"],
        "pki/ca.crt"
    ));
}

mod endpoints {
    use super::*;
    use crate::util::tls_server;

    fn probe(addr: &str, extra: &[&str]) -> crate::util::Run {
        let mut args = vec![
            "inspect",
            addr,
            "-o",
            "json",
            "--now",
            NOW,
            "--timeout",
            "3s",
        ];
        args.extend_from_slice(extra);
        certs(args)
    }

    #[test]
    fn verified_wrong_ca_name_not_covered_and_client_cert_required() {
        let dir = fixture("kubeadm");
        let pki = dir.path().join("etc/kubernetes/pki");
        let p = |s: &str| pki.join(s);
        let etcd_ca = p("etcd/ca.crt");
        let etcd_ca = etcd_ca.to_str().unwrap();
        let cluster_ca = p("ca.crt");
        let cluster_ca = cluster_ca.to_str().unwrap();

        // etcd's server certificate covers 127.0.0.1.
        let etcd = format!(
            "https://{}",
            tls_server(&p("etcd/server.crt"), &p("etcd/server.key"), None)
        );
        let run = probe(&etcd, &["--ca", etcd_ca]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report = run.json();
        let ep = &report["endpoints"][0];
        assert_eq!(ep["trust"], "verified");
        let served = &ep["chain"][0];
        let on_disk = certs([
            "inspect",
            p("etcd/server.crt").to_str().unwrap(),
            "-o",
            "json",
        ])
        .json();
        assert_eq!(served["sha256"], on_disk["certificates"][0]["sha256"]);
        assert_eq!(
            served["sans"]["ip"],
            serde_json::json!(["10.21.22.73", "127.0.0.1", "::1"])
        );

        // The same server checked against the wrong CA (kubeadm has three).
        let run = probe(&etcd, &["--ca", cluster_ca]);
        assert_eq!(run.code, 1);
        let ep = &run.json()["endpoints"][0];
        assert_eq!(ep["trust"], "untrusted");
        assert_eq!(
            ep["chain"][0]["subject"], "CN=master1",
            "the chain is shown even untrusted"
        );

        // The apiserver certificate does not name 127.0.0.1: chains, but does not cover it.
        let api = format!(
            "https://{}",
            tls_server(&p("apiserver.crt"), &p("apiserver.key"), None)
        );
        let run = probe(&api, &["--ca", cluster_ca]);
        assert_eq!(run.code, 1);
        let ep = &run.json()["endpoints"][0];
        assert_eq!(ep["trust"], "name-not-covered");
        assert!(
            ep["detail"].as_str().unwrap().contains("127.0.0.1"),
            "{}",
            ep["detail"]
        );

        // etcd demanding a client certificate: the served chain is still captured.
        let mtls = format!(
            "https://{}",
            tls_server(
                &p("etcd/server.crt"),
                &p("etcd/server.key"),
                Some(&p("etcd/ca.crt"))
            )
        );
        let run = probe(&mtls, &["--ca", etcd_ca]);
        let report = run.json();
        let ep = &report["endpoints"][0];
        assert_eq!(ep["chain"][0]["subject"], "CN=master1", "{ep}");
        assert!(ep["handshake_error"].is_string(), "{ep}");
        assert_eq!(ep["trust"], "verified");

        // --insecure shows the chain without trust; the table says so.
        let run = certs(["inspect", &api, "--insecure", "--timeout", "3s"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stdout.contains("not-checked"), "{}", run.stdout);
    }

    #[test]
    fn unreachable_endpoint_is_a_clear_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let run = certs([
            "inspect",
            &format!("https://{addr}"),
            "--insecure",
            "--timeout",
            "2s",
        ]);
        assert_eq!(run.code, 2);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(run.stderr.contains(&addr.to_string()), "{}", run.stderr);
    }
}
