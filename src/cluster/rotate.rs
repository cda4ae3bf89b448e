//! `certs cluster rotate-ca STAGE`: the playbook that runs one stage of a CA rotation
//! (`certs rotate-ca trust | switch | finish`) on every node of the inventory, from
//! `templates/ansible/rotate-ca.yml`. Pure: the roles resolved from the inventory and the
//! request in, the playbook's files out (the CLI adds `old-ca.pem`).

use super::{list, text, Roles};

/// The playbook template: placeholders `__CERTS_…__` are filled with host lists; everything
/// else is driven by `vars.yml`.
pub const PLAYBOOK: &str = include_str!("../../templates/ansible/rotate-ca.yml");

/// A rotation's stages, as `certs rotate-ca` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Trust,
    Switch,
    Finish,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Trust => "trust",
            Stage::Switch => "switch",
            Stage::Finish => "finish",
        }
    }

    /// What the stage does, for vars.yml and README.
    fn what(self) -> &'static str {
        match self {
            Stage::Trust => "every trust anchor holding the old CA gets the new CA after it",
            Stage::Switch => {
                "every leaf of the old CA is signed again by the new CA on the CA host (certificates only: each node splices its own into its files, keys kept); the signing files become the new CA, the new CA key copied (0600, no_log) only to nodes that held the old CA's key"
            }
            Stage::Finish => "the old CA is taken out of every trust anchor",
        }
    }
}

/// What the operator asked for, as given.
#[derive(Debug, Clone)]
pub struct Request {
    pub stage: Stage,
    /// The new CA's certificate and key on the CA host; `None`: the one `trust` makes there.
    pub new_ca: Option<(String, String)>,
    /// The certs binary on the controller.
    pub certs_binary: String,
}

/// The files of the rendered playbook directory: `playbook.yml`, `vars.yml`, `README`.
pub fn render(inventory_path: &str, req: &Request, r: &Roles) -> Vec<(String, String)> {
    let mut nodes = r.control_plane.clone();
    nodes.extend(r.workers.iter().cloned());
    let stage = req.stage.as_str();
    let (new_ca, new_ca_key) = match &req.new_ca {
        Some((c, k)) => (text(c), text(k)),
        None => ("null".to_string(), "null".to_string()),
    };
    let vars = format!(
        "---\n\
         # Written by `certs cluster rotate-ca {stage}` from {inventory}: {what}.\n\
         certs_stage: {stage_text}\n\
         # The certs binary on the controller, copied to every host.\n\
         certs_binary: {binary}\n\
         # The host holding the CA keys: the new CA is made (or named) and every leaf signed there; its\n\
         # key goes only to nodes that hold the old CA's key (kubeadm HA masters), never elsewhere.\n\
         certs_ca_host: {ca}\n\
         # The new CA's certificate and key on the CA host (null: the one `trust` makes in\n\
         # <certs_state>/rotate-ca/new-ca there).\n\
         certs_new_ca: {new_ca}\n\
         certs_new_ca_key: {new_ca_key}\n\
         # Every node, in the order the stage is installed: etcd members first, then the other\n\
         # control-plane hosts, then workers.\n\
         certs_nodes: {nodes}\n",
        inventory = inventory_path,
        what = req.stage.what(),
        stage_text = text(stage),
        binary = text(&req.certs_binary),
        ca = text(&r.ca_host),
        nodes = list(&nodes),
    );
    // Play 3 only for switch: the CA host signs the other nodes' leaves.
    let template = match (
        PLAYBOOK.find("# Play 3 (switch only)"),
        PLAYBOOK.find("# Play 4"),
    ) {
        (Some(from), Some(to)) if req.stage != Stage::Switch => {
            format!("{}{}", &PLAYBOOK[..from], &PLAYBOOK[to..])
        }
        _ => PLAYBOOK.to_string(),
    };
    let playbook = template
        .replace("__CERTS_ALL_HOSTS__", &list(&nodes))
        .replace("__CERTS_CA_HOST__", &list(std::slice::from_ref(&r.ca_host)))
        .replace("__CERTS_NODES__", &list(&nodes));
    let readme = format!(
        "certs cluster rotate-ca {stage}: {what}\n\
         CA host: {ca}; nodes, one at a time: {nodes}\n\
         Run:\n  ansible-playbook -i {inventory} playbook.yml\n\
         Check it first: ansible-playbook -i {inventory} playbook.yml --syntax-check\n\
         Each node's stage: certs rotate-ca status <certs_state>/rotate-ca/old-ca.pem --new-ca <certs_state>/rotate-ca/new-ca.pem --root <certs_root>\n",
        what = req.stage.what(),
        ca = r.ca_host,
        nodes = nodes.join(", "),
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
    use crate::cluster::{inventory, roles, Request as ChangeRequest};

    #[test]
    fn the_switch_playbook_alone_signs_on_the_ca_host() {
        let inv = inventory::parse(
            "[all]\nnode1 ip=10.6.0.11\nnode2 ip=10.6.0.12\nnode3 ip=10.6.0.13\nnode4 ip=10.6.0.14\n[kube_control_plane]\nnode1\nnode2\n[etcd]\nnode2\nnode3\n[kube_node]\nnode4\n",
        )
        .unwrap();
        let r = roles(&inv, &ChangeRequest::default()).unwrap();
        for stage in [Stage::Trust, Stage::Switch, Stage::Finish] {
            let req = Request {
                stage,
                new_ca: None,
                certs_binary: "/usr/bin/certs".into(),
            };
            let files = render("hosts.ini", &req, &r);
            let (pb, vars) = (&files[0].1, &files[1].1);
            assert!(!pb.contains("__CERTS_"), "{pb}");
            assert_eq!(
                pb.contains("'rotate-ca-sign',"),
                stage == Stage::Switch,
                "{stage:?}"
            );
            // Every task that carries the new CA's key hides it (no_log): the switch reads it
            // on the CA host and writes it on the nodes that held the old CA's key.
            let carrying: Vec<&str> = pb
                .split("- name: ")
                .filter(|task| task.contains("certs_new_ca_key_pem"))
                .collect();
            assert_eq!(carrying.len(), if stage == Stage::Switch { 2 } else { 1 });
            for task in carrying {
                assert!(task.contains("no_log: true"), "{task}");
            }
            // etcd members first, then the control plane, then workers.
            assert!(
                pb.contains("hosts: [\"node2\", \"node3\", \"node1\", \"node4\"]\n  serial: 1"),
                "{pb}"
            );
            assert!(vars.contains(&format!("certs_stage: \"{}\"", stage.as_str())));
            assert!(vars.contains("certs_ca_host: \"node1\""), "{vars}");
            assert!(vars.contains("certs_new_ca: null"), "{vars}");
        }
    }
}
