//! `certs cluster`: a change to a whole cluster (a VIP add or move, retiring masters, new
//! masters) as one Ansible playbook over the cluster's own inventory. `certs` stays a tool that
//! works on one node; the playbook only arranges it: check every node, reissue on the host that
//! holds the CA keys from each node's certificates (public parts only), roll out node by node.
//! Pure: the inventory's text and the request in, the playbook's files out.

pub mod error;
pub mod inventory;
pub mod rotate;

pub use error::Error;

use inventory::{Flavour, Inventory};

/// The playbook template (`templates/ansible/playbook.yml`): placeholders `__CERTS_…__` are
/// filled with host lists; everything else is driven by `vars.yml`.
pub const PLAYBOOK: &str = include_str!("../../templates/ansible/playbook.yml");

/// What the operator asked for, as given.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub vip: Option<String>,
    pub old_vip: Option<String>,
    /// Inventory host names or addresses.
    pub retire: Vec<String>,
    pub add_master: Vec<String>,
    pub add_san: Vec<String>,
    pub drop_san: Vec<String>,
    pub ca_host: Option<String>,
    /// The certs binary on the controller.
    pub certs_binary: String,
    pub worker_serial: u32,
    pub online: bool,
}

/// Who does what, resolved from the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    pub flavour: Flavour,
    /// Hosts that stay, in play-3 order: etcd members first, then the other control-plane hosts.
    pub control_plane: Vec<String>,
    /// Workers (kube_node hosts that are neither control plane nor etcd), play 4.
    pub workers: Vec<String>,
    pub ca_host: String,
    /// The last etcd member that stays: the one host whose bundle removes the retired members,
    /// after every member restarted on its new certificates while the cluster had them all
    /// (a rolling restart of the members that stay keeps quorum only while the retired ones
    /// still count).
    pub membership_host: Option<String>,
    /// Retired hosts of the inventory, left out of every play.
    pub retired_hosts: Vec<String>,
    /// `--retire` values for certs on the nodes: the retired hosts' addresses (an address the
    /// inventory does not hold is passed as given).
    pub retire: Vec<String>,
}

/// Resolves the request against the inventory.
pub fn roles(inv: &Inventory, req: &Request) -> Result<Roles, Error> {
    let layout = inv.layout()?;
    let mut retired_hosts = Vec::new();
    let mut retire = Vec::new();
    for r in &req.retire {
        match inv.find(r) {
            Some(h) => {
                let addr = h.addr().ok_or_else(|| Error::RetiredWithoutAddress {
                    given: r.clone(),
                    host: h.name.clone(),
                })?;
                if !retired_hosts.contains(&h.name) {
                    retired_hosts.push(h.name.clone());
                    retire.push(addr);
                }
            }
            None if r.parse::<std::net::IpAddr>().is_ok() => retire.push(r.clone()),
            None => {
                return Err(Error::UnknownRetired {
                    given: r.clone(),
                    hosts: inv.hosts.iter().map(|h| h.name.clone()).collect(),
                })
            }
        }
    }
    let stays = |h: &String| !retired_hosts.contains(h);
    let mut control_plane: Vec<String> = layout.etcd.iter().filter(|h| stays(h)).cloned().collect();
    for h in layout.control_plane.iter().filter(|h| stays(h)) {
        if !control_plane.contains(h) {
            control_plane.push(h.clone());
        }
    }
    let cp_left: Vec<&String> = layout.control_plane.iter().filter(|h| stays(h)).collect();
    if cp_left.is_empty() {
        return Err(Error::NoControlPlaneLeft);
    }
    let workers: Vec<String> = layout
        .nodes
        .iter()
        .filter(|h| stays(h) && !control_plane.contains(h))
        .cloned()
        .collect();
    let ca_host = match &req.ca_host {
        Some(c) => {
            let h = inv.find(c).ok_or_else(|| Error::UnknownCaHost(c.clone()))?;
            if !stays(&h.name) {
                return Err(Error::RetiredCaHost(c.clone()));
            }
            h.name.clone()
        }
        None => cp_left[0].clone(),
    };
    // The last etcd member in play-3 order: every member has restarted before it removes.
    let membership_host = control_plane
        .iter()
        .rev()
        .find(|h| layout.etcd.contains(h))
        .cloned();
    Ok(Roles {
        flavour: layout.flavour,
        control_plane,
        workers,
        ca_host,
        membership_host,
        retired_hosts,
        retire,
    })
}

/// A YAML flow list of strings (JSON strings are YAML).
/// A YAML flow list (`["a", "b"]`, a space after each comma, as yamllint wants it).
fn list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|i| text(i)).collect::<Vec<_>>().join(", ")
    )
}

fn text(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The files of the rendered playbook directory: `playbook.yml`, `vars.yml`, `README`.
pub fn render(inventory_path: &str, req: &Request, r: &Roles) -> Vec<(String, String)> {
    let mut change: Vec<String> = Vec::new();
    let mut preflight: Vec<String> = Vec::new();
    if let Some(v) = &req.vip {
        change.extend(["--vip".into(), v.clone()]);
        preflight.extend(["--vip".into(), v.clone()]);
    }
    if let Some(v) = &req.old_vip {
        change.extend(["--old-vip".into(), v.clone()]);
    }
    for a in &r.retire {
        change.extend(["--retire".into(), a.clone()]);
        preflight.extend(["--retire".into(), a.clone()]);
    }
    for (flag, vals) in [
        ("--add-master", &req.add_master),
        ("--add-san", &req.add_san),
        ("--drop-san", &req.drop_san),
    ] {
        for v in vals {
            change.extend([flag.to_string(), v.clone()]);
        }
    }
    let mut nodes = r.control_plane.clone();
    nodes.extend(r.workers.iter().cloned());
    let all = nodes.clone();
    let what = {
        let mut w: Vec<String> = Vec::new();
        if let Some(v) = &req.vip {
            w.push(match &req.old_vip {
                Some(o) => format!("move the VIP {o} to {v}"),
                None => format!("add the VIP {v}"),
            });
        }
        if !r.retire.is_empty() {
            w.push(format!("retire {}", r.retire.join(", ")));
        }
        if !req.add_master.is_empty() {
            w.push(format!("add {}", req.add_master.join(", ")));
        }
        if !req.add_san.is_empty() || !req.drop_san.is_empty() {
            w.push("edit the apiserver SANs".into());
        }
        w.join("; ")
    };
    let vars = format!(
        "---\n\
         # Written by `certs cluster` from {inventory}: {what}.\n\
         # The certs binary on the controller, copied to every host.\n\
         certs_binary: {binary}\n\
         # The host holding the CA keys: every bundle is signed there.\n\
         certs_ca_host: {ca}\n\
         # The etcd membership steps of a retirement run once, on this host (the last etcd\n\
         # member rolled out), after every member restarted on its new certificates.\n\
         certs_membership_host: {membership}\n\
         # Every node a bundle is made for: control plane (etcd members first), then workers.\n\
         certs_nodes: {nodes}\n\
         # Left out of every play (retired).\n\
         certs_retired_hosts: {retired}\n\
         # `certs change` options of the change, for each node's bundle.\n\
         certs_change_args: {change}\n\
         # `certs preflight` options, on every node.\n\
         certs_preflight_args: {preflight}\n\
         # Preflight checks the change fixes: they may fail before it (play 1), not after it.\n\
         certs_fixed_by_change: [\"vip-san\", \"kubeconfig-vip\", \"retire-stale-san\", \"etcd-servers-flag\", \"etcd-initial-cluster\", \"proxy-upstream\", \"kubeconfig-retired\"]\n\
         # Preflight probes live endpoints (the VIP) when true; files only otherwise.\n\
         certs_online: {online}\n\
         # Where the CA host's bundles are fetched to on the controller.\n\
         certs_controller_dir: \"{{{{ playbook_dir }}}}/run\"\n",
        inventory = inventory_path,
        binary = text(&req.certs_binary),
        ca = text(&r.ca_host),
        membership = r.membership_host.as_deref().map_or("null".into(), text),
        nodes = list(&nodes),
        retired = list(&r.retired_hosts),
        change = list(&change),
        preflight = list(&preflight),
        online = req.online,
    );
    // Play 4 only when there are workers (an empty host list is an error to Ansible).
    let template = match PLAYBOOK.find("# Play 4 (left out") {
        Some(at) if r.workers.is_empty() => format!("{}\n", PLAYBOOK[..at].trim_end()),
        _ => PLAYBOOK.to_string(),
    };
    let playbook = template
        .replace("__CERTS_ALL_HOSTS__", &list(&all))
        .replace("__CERTS_CA_HOST__", &list(std::slice::from_ref(&r.ca_host)))
        .replace("__CERTS_CONTROL_PLANE__", &list(&r.control_plane))
        .replace("__CERTS_WORKERS__", &list(&r.workers))
        .replace(
            "__CERTS_WORKER_SERIAL__",
            &req.worker_serial.max(1).to_string(),
        );
    let readme = format!(
        "certs cluster: {what}\n\
         CA host: {ca}; control plane, one at a time: {cp}; workers: {workers}{retired}\n\
         Run:\n  ansible-playbook -i {inventory} playbook.yml\n\
         Check it first: ansible-playbook -i {inventory} playbook.yml --syntax-check\n",
        ca = r.ca_host,
        cp = r.control_plane.join(", "),
        workers = if r.workers.is_empty() {
            "none".to_string()
        } else {
            r.workers.join(", ")
        },
        retired = if r.retired_hosts.is_empty() {
            String::new()
        } else {
            format!("; retired (left out): {}", r.retired_hosts.join(", "))
        },
        inventory = inventory_path,
    );
    vec![
        ("playbook.yml".into(), playbook),
        ("vars.yml".into(), vars),
        ("README".into(), readme),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        inventory::parse(
            "[all]\nnode1 ip=10.6.0.11\nnode2 ip=10.6.0.12\nnode3 ip=10.6.0.13\nnode4 ip=10.6.0.14\nnode5 ip=10.6.0.15\n[kube_control_plane]\nnode1\nnode2\nnode3\nnode4\n[etcd]\nnode2\nnode3\nnode1\n[kube_node]\nnode4\nnode5\n",
        )
        .unwrap()
    }

    #[test]
    fn retiring_a_host_orders_the_rest_etcd_first() {
        let req = Request {
            retire: vec!["node3".into()],
            worker_serial: 2,
            ..Request::default()
        };
        let r = roles(&inv(), &req).unwrap();
        assert_eq!(r.control_plane, ["node2", "node1", "node4"]);
        assert_eq!(r.workers, ["node5"]);
        assert_eq!(r.ca_host, "node1");
        // node2 then node1 restart while node3 still counts; node1 (the last) removes it.
        assert_eq!(r.membership_host.as_deref(), Some("node1"));
        assert_eq!(r.retire, ["10.6.0.13"]);
        let files = render("hosts.ini", &req, &r);
        let vars = &files[1].1;
        assert!(
            vars.contains("certs_change_args: [\"--retire\", \"10.6.0.13\"]"),
            "{vars}"
        );
        assert!(
            vars.contains("certs_nodes: [\"node2\", \"node1\", \"node4\", \"node5\"]"),
            "{vars}"
        );
        let pb = &files[0].1;
        assert!(!pb.contains("__CERTS_"), "{pb}");
        assert!(
            pb.contains("hosts: [\"node2\", \"node1\", \"node4\"]\n  serial: 1"),
            "{pb}"
        );
        assert!(pb.contains("serial: 2"));
        // By address or etcd member name too.
        assert_eq!(
            roles(
                &inv(),
                &Request {
                    retire: vec!["10.6.0.13".into()],
                    ..req.clone()
                }
            )
            .unwrap(),
            r
        );
    }

    #[test]
    fn refusals() {
        let bad = |req: Request| roles(&inv(), &req).unwrap_err().to_string();
        assert!(bad(Request {
            retire: vec!["node9".into()],
            ..Request::default()
        })
        .contains("node9"));
        assert!(bad(Request {
            retire: ["node1", "node2", "node3", "node4"]
                .map(String::from)
                .to_vec(),
            ..Request::default()
        })
        .contains("at least one control-plane host"));
        assert!(bad(Request {
            retire: vec!["node1".into()],
            ca_host: Some("node1".into()),
            ..Request::default()
        })
        .contains("retired"));
        // An address no host has is passed on as given.
        let r = roles(
            &inv(),
            &Request {
                retire: vec!["10.6.0.99".into()],
                ..Request::default()
            },
        )
        .unwrap();
        assert_eq!(r.retire, ["10.6.0.99"]);
        assert!(r.retired_hosts.is_empty());
    }
}
