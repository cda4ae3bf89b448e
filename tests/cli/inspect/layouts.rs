//! Every certificate of every layout against openssl, and the links (CA, key, kubeconfig) of
//! kubeadm, kubespray and cfssl layouts.

use super::*;

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
