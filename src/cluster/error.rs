//! What `certs cluster` cannot work with: an inventory that does not read, or a request the
//! inventory cannot satisfy. Each message says what was expected and what was found.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The inventory text does not read as INI or YAML (the line and what is wrong).
    #[error("{0}")]
    Inventory(String),

    #[error(
        "expected a group kube_control_plane (kubespray, kubean) or kube_master (kubeasz) with hosts, found groups: {}",
        if .groups.is_empty() { "none".to_string() } else { .groups.join(", ") }
    )]
    NoControlPlaneGroup { groups: Vec<String> },

    #[error("--retire {given}: host {host} has no address in the inventory (ip, access_ip or ansible_host)")]
    RetiredWithoutAddress { given: String, host: String },

    #[error(
        "--retire {given}: expected a host of the inventory (name, ip, ansible_host or etcd member name) or an address, found none called so (hosts: {})",
        .hosts.join(", ")
    )]
    UnknownRetired { given: String, hosts: Vec<String> },

    #[error("--retire: expected at least one control-plane host to stay, found every one retired")]
    NoControlPlaneLeft,

    #[error("--ca-host {0}: expected a host of the inventory, found none called so")]
    UnknownCaHost(String),

    #[error("--ca-host {0}: the CA host cannot be a retired host")]
    RetiredCaHost(String),
}
