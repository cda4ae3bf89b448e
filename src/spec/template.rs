//! Built-in cfssl templates (`templates/cfssl/`), for clusters that lost their csr.json files.

/// (name, JSON) for every template, compiled in so the binary needs no data files.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("ca", include_str!("../../templates/cfssl/ca.json")),
    (
        "ca-config",
        include_str!("../../templates/cfssl/ca-config.json"),
    ),
    (
        "kubernetes",
        include_str!("../../templates/cfssl/kubernetes.json"),
    ),
    ("etcd", include_str!("../../templates/cfssl/etcd.json")),
    (
        "etcd-peer",
        include_str!("../../templates/cfssl/etcd-peer.json"),
    ),
    (
        "etcd-client",
        include_str!("../../templates/cfssl/etcd-client.json"),
    ),
    ("admin", include_str!("../../templates/cfssl/admin.json")),
    (
        "kube-controller-manager",
        include_str!("../../templates/cfssl/kube-controller-manager.json"),
    ),
    (
        "kube-scheduler",
        include_str!("../../templates/cfssl/kube-scheduler.json"),
    ),
    (
        "kube-proxy",
        include_str!("../../templates/cfssl/kube-proxy.json"),
    ),
    (
        "kubelet",
        include_str!("../../templates/cfssl/kubelet.json"),
    ),
];

/// Aliases operators use for the same component.
fn canonical(name: &str) -> &str {
    match name {
        "apiserver" | "kube-apiserver" => "kubernetes",
        "etcd-server" => "etcd",
        "controller-manager" => "kube-controller-manager",
        "scheduler" => "kube-scheduler",
        other => other,
    }
}

pub fn get(name: &str) -> Result<&'static str, super::Error> {
    let wanted = canonical(name);
    TEMPLATES
        .iter()
        .find(|(n, _)| *n == wanted)
        .map(|(_, json)| *json)
        .ok_or_else(|| super::Error::UnknownTemplate {
            name: name.to_string(),
            known: TEMPLATES.iter().map(|(n, _)| *n).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_csr_template_is_a_valid_spec() {
        for (name, json) in TEMPLATES.iter().filter(|(n, _)| *n != "ca-config") {
            let spec: crate::spec::CsrSpec =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}"));
            spec.sans().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(get("apiserver").unwrap().contains("kubernetes.default.svc"));
        assert!(get("nope").unwrap_err().to_string().contains("kube-proxy"));
    }
}
