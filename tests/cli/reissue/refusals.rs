//! What `reissue` refuses or leaves alone: dry runs, bad inputs, SANs Go cannot parse,
//! CA keys and validities that would make unusable certificates.

use super::*;

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
