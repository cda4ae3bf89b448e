//! The seed scenarios (a binary cluster retiring two masters, a kubeadm apiserver gaining a
//! VIP), byte-identical multi-valued subjects and new keys keeping their format.

use super::*;

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
