//! `certs issue --like`: a new identity made like an existing certificate, read back with
//! openssl and the real cfssl, installed by `certs rollout` as new files and removed again by its
//! rollback; every bad input exits 2 with one line and writes nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{certs, certs_in, fixture, openssl, openssl_sans, s_ref as s, tree_digest, NOW};

/// The subject as openssl prints it with each attribute's string type, in order.
fn typed_subject(cert: &Path) -> String {
    openssl([
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-subject",
        "-nameopt",
        "oneline,show_type",
    ])
}

/// The Subject's attributes: (RDN index, OID, DER tag of the value, value bytes).
fn attributes(cert: &Path) -> Vec<(usize, String, u32, Vec<u8>)> {
    use x509_parser::prelude::FromDer;
    let bytes = std::fs::read(cert).unwrap();
    let der = pem::parse(&bytes).unwrap().into_contents();
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    c.subject()
        .iter()
        .enumerate()
        .flat_map(|(i, rdn)| {
            rdn.iter()
                .map(|a| {
                    (
                        i,
                        a.attr_type().to_id_string(),
                        a.attr_value().header.tag().0,
                        a.attr_value().data.to_vec(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn pubkey_of_cert(cert: &Path) -> String {
    openssl(["x509", "-in", s(cert), "-noout", "-pubkey"])
}

fn pubkey_of_key(key: &Path) -> String {
    openssl(["pkey", "-in", s(key), "-pubout"])
}

fn usages(cert: &Path) -> String {
    openssl([
        "x509",
        "-in",
        s(cert),
        "-noout",
        "-ext",
        "keyUsage,extendedKeyUsage,basicConstraints",
    ])
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn sha256(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const OID_CN: &str = "2.5.4.3";

/// The new certificate's subject is the template's, attribute for attribute (order, string
/// type, bytes), but for the CN's value.
fn assert_only_the_cn_differs(template: &Path, new: &Path, old_cn: &str, new_cn: &str) {
    let (a, b) = (attributes(template), attributes(new));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            (x.0, &x.1, x.2),
            (y.0, &y.1, y.2),
            "attribute order or type"
        );
        if x.1 == OID_CN {
            assert_eq!(
                (x.3.as_slice(), y.3.as_slice()),
                (old_cn.as_bytes(), new_cn.as_bytes())
            );
        } else {
            assert_eq!(x.3, y.3, "attribute {} changed", x.1);
        }
    }
    let from = format!("CN = PRINTABLESTRING:{old_cn}");
    let to = format!("CN = PRINTABLESTRING:{new_cn}");
    assert_eq!(
        typed_subject(new),
        typed_subject(template).replace(&from, &to)
    );
}

#[test]
fn kubespray_scale_up_member_node4_like_member_node1() {
    let dir = fixture("kubespray");
    let ssl = dir.path().join("etc/ssl/etcd/ssl");
    let before = tree_digest(dir.path());
    let run = certs_in(
        dir.path(),
        [
            "issue",
            "--like",
            "etc/ssl/etcd/ssl/member-node1.pem",
            "--cn",
            "etcd-member-node4",
            "--add-san",
            "10.6.0.14",
            "--add-san",
            "node4",
            "--out",
            "B",
            "--now",
            NOW,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The bundle is written outside the node's files: none of them changed or appeared.
    let b = dir.path().join("B");
    let after: Vec<_> = tree_digest(dir.path())
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&b))
        .collect();
    assert_eq!(after, before);
    assert!(run.stdout.contains("member-node4.pem"), "{}", run.stdout);

    let (template, cert, key) = (
        ssl.join("member-node1.pem"),
        b.join("member-node4.pem"),
        b.join("member-node4-key.pem"),
    );
    let out = openssl(["verify", "-CAfile", s(&ssl.join("ca.pem")), s(&cert)]);
    assert!(out.trim().ends_with(": OK"), "{out}");
    crate::util::cfssl_certinfo(&cert);

    // Subject: the template's with only the CN changed — as openssl prints it, and in DER (the
    // two CNs are as long, so the whole Name differs in that one byte).
    let subject = |p: &Path| openssl(["x509", "-in", s(p), "-noout", "-subject"]);
    assert_eq!(
        subject(&cert),
        subject(&template).replace("etcd-member-node1", "etcd-member-node4")
    );
    assert_only_the_cn_differs(&template, &cert, "etcd-member-node1", "etcd-member-node4");

    // SANs: the template's and the two added.
    let mut want = openssl_sans(&template);
    want.extend(["IP:10.6.0.14".to_string(), "DNS:node4".to_string()]);
    assert_eq!(openssl_sans(&cert), want);
    // Key usage, extended key usage and CA:FALSE as the template's.
    assert_eq!(usages(&cert), usages(&template));

    // A new key, of the template's kind and in its key's format (PKCS#1 beside it), 0600, that
    // pairs with the new certificate.
    assert_eq!(pubkey_of_key(&key), pubkey_of_cert(&cert));
    assert_ne!(pubkey_of_cert(&cert), pubkey_of_cert(&template));
    let key_text = std::fs::read_to_string(&key).unwrap();
    assert!(
        key_text.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{key_text}"
    );
    let bits = |p: &Path| {
        openssl(["x509", "-in", s(p), "-noout", "-text"])
            .lines()
            .find(|l| l.contains("Public-Key:"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(bits(&cert), bits(&template));
    assert_eq!(mode(&key), 0o600);

    // The real cfssl reads it.
    let info = Command::new("cfssl")
        .args(["certinfo", "-cert", s(&cert)])
        .output()
        .expect("cfssl is installed (tests/debian.sh installs golang-cfssl)");
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let info: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["subject"]["common_name"], "etcd-member-node4");
    let sans: BTreeSet<&str> = info["sans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(sans.contains("node4") && sans.contains("10.6.0.14") && sans.contains("node1"));

    // bundle.json: both files, to be installed beside the template, new (no old_sha256).
    let m: Value = serde_json::from_slice(&std::fs::read(b.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(m["schema"], "certs.bundle/v1");
    assert_eq!(m["ca"]["certificate"], s(&ssl.join("ca.pem")));
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{m}");
    for (f, (name, kind, file_mode)) in files.iter().zip([
        ("member-node4.pem", "certificate", "0644"),
        ("member-node4-key.pem", "private-key", "0600"),
    ]) {
        assert_eq!(f["bundle_path"], name);
        assert_eq!(f["target"], s(&ssl.join(name)));
        assert_eq!(f["kind"], kind);
        assert_eq!(f["mode"], file_mode);
        assert_eq!(f["old_sha256"], "");
        assert_eq!(f["components"], serde_json::json!([]));
        assert_eq!(
            f["new_sha256"],
            sha256(&std::fs::read(b.join(name)).unwrap())
        );
    }
    assert_eq!(files[0]["like"], s(&template));
    assert_eq!(files[0]["key"], "new");
    assert_eq!(files[0]["new_serial"].as_str().unwrap().len(), 32);
    assert_eq!(files[1]["key"], s(&ssl.join("member-node4.pem")));
}

#[test]
fn rollout_installs_the_new_files_and_its_rollback_removes_them() {
    let dir = fixture("kubespray");
    let ssl = dir.path().join("etc/ssl/etcd/ssl");
    let b = dir.path().join("bundle");
    let run = certs([
        "issue",
        "--like",
        s(&ssl.join("member-node1.pem")),
        "--cn",
        "etcd-member-node4",
        "--add-san",
        "10.6.0.14",
        "--add-san",
        "node4",
        "--out",
        s(&b),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let before = tree_digest(&ssl);
    let state = dir.path().join("state");
    let rollout = |words: &[&str]| {
        let mut args: Vec<String> = vec!["rollout".into()];
        args.extend(words.iter().map(|w| w.to_string()));
        args.extend(["--state-dir".into(), s(&state).into()]);
        certs(args)
    };
    let plan = rollout(&["plan", s(&b), "--root", s(dir.path())]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(plan.stdout.contains("no restart"), "{}", plan.stdout);
    let apply = rollout(&["apply", s(&b), "--root", s(dir.path())]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    for name in ["member-node4.pem", "member-node4-key.pem"] {
        assert_eq!(
            std::fs::read(ssl.join(name)).unwrap(),
            std::fs::read(b.join(name)).unwrap()
        );
    }
    assert_eq!(mode(&ssl.join("member-node4-key.pem")), 0o600);
    let out = openssl([
        "verify",
        "-CAfile",
        s(&ssl.join("ca.pem")),
        s(&ssl.join("member-node4.pem")),
    ]);
    assert!(out.trim().ends_with(": OK"), "{out}");
    let back = rollout(&["rollback"]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(tree_digest(&ssl), before, "the rollback leaves no new file");
}

#[test]
fn an_ecdsa_template_with_a_full_subject_and_json_output() {
    let dir = fixture("kubeasz-ecdsa");
    let ssl = dir.path().join("etc/kubernetes/ssl");
    let b = dir.path().join("b");
    let run = certs([
        "issue",
        "--like",
        s(&ssl.join("admin.pem")),
        "--cn",
        "admin2",
        "--out",
        s(&b),
        // After the cfssl-made CA's notBefore (2026-11-22): a CA not valid yet signs nothing.
        "--now",
        "2026-11-23T00:00:00Z",
        "--validity",
        "365d",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["schema"], "certs.issue/v1");
    assert_eq!(r["changed"], true);
    assert_eq!(
        r["key"],
        serde_json::json!({"algo": "ecdsa", "size": 256, "format": "sec1"})
    );
    assert_eq!(r["sans"]["added"], serde_json::json!([]));
    assert_eq!(r["not_after"], "2027-11-22T23:55:00Z");
    let (template, cert, key) = (
        ssl.join("admin.pem"),
        b.join("admin2.pem"),
        b.join("admin2-key.pem"),
    );
    assert_eq!(r["files"][0]["target"], s(&ssl.join("admin2.pem")));
    assert_eq!(r["files"][1]["target"], s(&ssl.join("admin2-key.pem")));
    // C, ST, L, O=system:masters, OU kept byte for byte; only CN=admin → admin2.
    assert_only_the_cn_differs(&template, &cert, "admin", "admin2");
    assert_eq!(usages(&cert), usages(&template));
    assert_eq!(openssl_sans(&cert), openssl_sans(&template));
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(pubkey_of_key(&key), pubkey_of_cert(&cert));
    let out = openssl(["verify", "-CAfile", s(&ssl.join("ca.pem")), s(&cert)]);
    assert!(out.trim().ends_with(": OK"), "{out}");
    crate::util::cfssl_certinfo(&cert);

    // Multi-valued RDNs (cfssl's two O's and doubled C, ST, L, OU) stay as they were.
    let dir = fixture("binary");
    let ssl = dir.path().join("etc/kubernetes/ssl");
    let b = dir.path().join("b");
    let run = certs([
        "issue",
        "--like",
        s(&ssl.join("multi-o.pem")),
        "--cn",
        "multi-o2",
        "--name",
        "multi-two.pem",
        "--key-algo",
        "ecdsa:256",
        "--out",
        s(&b),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_only_the_cn_differs(
        &ssl.join("multi-o.pem"),
        &b.join("multi-two.pem"),
        "multi-o",
        "multi-o2",
    );
    // --key-algo: an ECDSA key, in the traditional format beside the template's (PKCS#1 → SEC1).
    let key = b.join("multi-two-key.pem");
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert_eq!(
        pubkey_of_key(&key),
        pubkey_of_cert(&b.join("multi-two.pem"))
    );
}

#[test]
fn bad_inputs_exit_2_with_one_line_and_write_nothing() {
    let dir = fixture("kubespray");
    let ssl = dir.path().join("etc/ssl/etcd/ssl");
    let member1 = ssl.join("member-node1.pem");
    let before = tree_digest(dir.path());
    let out = dir.path().join("out");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--like".into(),
                s(&member1).into(),
                "--cn".into(),
                "".into(),
            ],
            "empty",
        ),
        (
            vec![
                "--like".into(),
                s(&member1).into(),
                "--cn".into(),
                "etcd-member-node1".into(),
            ],
            "the template's own identity",
        ),
        (
            vec![
                "--like".into(),
                s(&ssl.join("ca.pem")).into(),
                "--cn".into(),
                "etcd-ca2".into(),
            ],
            "found a CA",
        ),
        (
            vec![
                "--like".into(),
                s(&member1).into(),
                "--cn".into(),
                "etcd-member-node4".into(),
                "--drop-san".into(),
                "10.9.9.9".into(),
            ],
            "cannot drop IP:10.9.9.9",
        ),
        (
            // member-node2.pem is there already.
            vec![
                "--like".into(),
                s(&member1).into(),
                "--cn".into(),
                "etcd-member-node2".into(),
            ],
            "already exists",
        ),
        (
            vec![
                "--like".into(),
                s(&member1).into(),
                "--cn".into(),
                "etcd-member-node4".into(),
                "--name".into(),
                "admin-node1.pem".into(),
            ],
            "already exists",
        ),
        (
            // The CN's changed part is not in the file name: --name is needed.
            vec![
                "--like".into(),
                s(&dir
                    .path()
                    .join("etc/kubernetes/ssl/apiserver-kubelet-client.crt"))
                .into(),
                "--cn".into(),
                "system:node:node4".into(),
            ],
            "pass --name",
        ),
        (
            vec![
                "--like".into(),
                s(&dir.path().join("etc/kubernetes/admin.conf")).into(),
                "--cn".into(),
                "x".into(),
            ],
            "found a kubeconfig",
        ),
        (
            // Another CA than the template's.
            vec![
                "--like".into(),
                s(&member1).into(),
                "--cn".into(),
                "etcd-member-node4".into(),
                "--ca".into(),
                s(&dir.path().join("etc/kubernetes/ssl/ca.crt")).into(),
                "--ca-key".into(),
                s(&dir.path().join("etc/kubernetes/ssl/ca.key")).into(),
            ],
            "expected a certificate signed by CA",
        ),
    ];
    for (args, says) in &cases {
        let mut argv: Vec<String> = vec!["issue".into()];
        argv.extend(args.iter().cloned());
        argv.extend(["--out".into(), s(&out).into()]);
        let run = certs(&argv);
        assert_eq!(run.code, 2, "{argv:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{argv:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{argv:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{argv:?}: {}", run.stdout);
        assert!(!out.exists(), "{argv:?} created {}", out.display());
    }
    assert_eq!(tree_digest(dir.path()), before);

    // No CA key beside the template.
    std::fs::remove_file(ssl.join("ca-key.pem")).unwrap();
    let run = certs([
        "issue",
        "--like",
        s(&member1),
        "--cn",
        "etcd-member-node4",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("no private key"), "{}", run.stderr);
    assert!(!out.exists());
}
