//! Client certificates embedded in kubeconfigs, reissued in place.

use super::*;

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
