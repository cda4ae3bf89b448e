//! Profiles: which components a node runs, which files each uses, how each restarts and how it
//! is probed. Built-in ones for kubeadm, kubespray and binary/kubeasz nodes (templates/rollout/),
//! a profile file for anything else, and per-component overrides from the command line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Error;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub components: Vec<Component>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Component {
    /// Unique: `etcd`, `kube-apiserver`, or `etcd-2` for one of several members.
    pub name: String,
    /// What it is, which decides the order: etcd, kube-apiserver, kube-controller-manager,
    /// kube-scheduler, kubelet, kube-proxy, node-local-lb (anything else goes last).
    pub kind: String,
    /// The files it reads. Empty: the bundle files whose `components` name this kind.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
    pub restart: Restart,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<Health>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    /// `systemctl restart UNIT`, then `systemctl is-active UNIT`.
    Systemd(String),
    /// `systemctl daemon-reload` first, then as `Systemd`: its unit file or a drop-in changed.
    SystemdReload(String),
    /// Move the manifest out of the kubelet's manifests directory for longer than its 20 s file
    /// check, then back (`kubectl delete pod` does not restart a static pod).
    StaticPod(PathBuf),
    /// Any shell command.
    Command(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    /// `https://host:port`: the TLS endpoint that must serve the new certificate.
    pub url: String,
    /// An HTTP path that must answer 200 on it (`/health`, `/readyz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A string the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// CA to verify the served chain against [default: the bundle's CA].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// The certificate file it serves [default: the component's bundle certificate that covers
    /// the URL's host].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serves: Option<PathBuf>,
}

pub const BUILTIN: &[(&str, &str)] = &[
    (
        "kubeadm",
        include_str!("../../templates/rollout/kubeadm.json"),
    ),
    (
        "kubespray",
        include_str!("../../templates/rollout/kubespray.json"),
    ),
    (
        "binary",
        include_str!("../../templates/rollout/binary.json"),
    ),
];

/// The order that keeps a cluster up: etcd first, node-local proxies last.
pub fn rank(kind: &str) -> usize {
    const ORDER: &[&str] = &[
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "node-local-lb",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

pub fn builtin(name: &str) -> Result<Profile, Error> {
    let json = BUILTIN
        .iter()
        .find(|(n, _)| {
            *n == name
                || (name == "kubeasz" && *n == "binary")
                || (name == "kubean" && *n == "kubespray")
        })
        .map(|(_, j)| *j)
        .ok_or_else(|| Error::UnknownProfile { name: name.into() })?;
    serde_json::from_str(json).map_err(|source| Error::BuiltinProfile {
        name: name.into(),
        source,
    })
}

pub fn parse(path: &Path, text: &str) -> Result<Profile, Error> {
    serde_json::from_str(text).map_err(|source| Error::ProfileFile {
        path: path.to_path_buf(),
        source,
    })
}

/// Which built-in profile fits how the node runs its control plane: a kube-apiserver (or etcd)
/// static pod means kubeadm, or kubespray when etcd runs under systemd beside it; systemd
/// control-plane units mean a binary (kubeasz) node. `None` when the node says nothing.
pub fn detect_from_node(node: &[crate::node::Component]) -> Option<&'static str> {
    use crate::node::Runs;
    let runs = |kind: &str| node.iter().find(|c| c.kind == kind).map(|c| &c.runs);
    let static_pod = |r: Option<&Runs>| matches!(r, Some(Runs::StaticPod(_)));
    let systemd = |r: Option<&Runs>| matches!(r, Some(Runs::Systemd(_)));
    let (api, etcd) = (runs("kube-apiserver"), runs("etcd"));
    if static_pod(api) {
        Some(if systemd(etcd) {
            "kubespray"
        } else {
            "kubeadm"
        })
    } else if systemd(api) {
        Some("binary")
    } else if static_pod(etcd) {
        Some("kubeadm")
    } else if systemd(etcd) {
        Some("binary")
    } else {
        None
    }
}

/// Which built-in profile fits the bundle's target paths.
pub fn detect(targets: &[PathBuf]) -> Result<&'static str, Error> {
    let any = |needle: &str| targets.iter().any(|t| t.to_string_lossy().contains(needle));
    if any("/etc/kubernetes/pki/") {
        Ok("kubeadm")
    } else if any("/etc/ssl/etcd/ssl/") {
        Ok("kubespray")
    } else if any("/etc/kubernetes/ssl/") || any("/etc/etcd/ssl/") {
        Ok("binary")
    } else {
        Err(Error::UnknownLayout)
    }
}

impl Profile {
    /// Prefixes every absolute path with `root` (a node mounted elsewhere, or a test tree).
    pub fn rerooted(mut self, root: &Path) -> Profile {
        let re = |p: &mut PathBuf| *p = crate::sys::fs::under_root(root, p);
        for c in &mut self.components {
            c.files.iter_mut().for_each(re);
            if let Restart::StaticPod(m) = &mut c.restart {
                re(m);
            }
            for h in &mut c.health {
                for p in [
                    &mut h.ca,
                    &mut h.client_cert,
                    &mut h.client_key,
                    &mut h.serves,
                ]
                .into_iter()
                .flatten()
                {
                    re(p);
                }
            }
        }
        self
    }

    /// Fills `{advertise-address}` in health URLs from what the node says: the
    /// `--advertise-address` of the node's component of the same kind. The apiserver
    /// certificate rarely covers 127.0.0.1, so the gate dials the address it does.
    /// Unresolved, the placeholder stays: the plan refuses it only if that component runs.
    pub fn resolve(&mut self, node: &[crate::node::Component]) {
        for c in &mut self.components {
            let address = node
                .iter()
                .filter(|n| n.kind == c.kind)
                .find_map(|n| n.get("advertise-address"))
                .map(|a| a.trim_matches('"').to_string());
            let Some(address) = address else { continue };
            for h in &mut c.health {
                h.url = h.url.replace("{advertise-address}", &address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_reroot_and_detect() {
        for (name, _) in BUILTIN {
            let p = builtin(name).unwrap();
            assert_eq!(p.components[0].kind, "etcd", "{name}: etcd first");
        }
        let r = builtin("kubeadm").unwrap().rerooted(Path::new("/mnt"));
        assert_eq!(
            r.components[0].restart,
            Restart::StaticPod("/mnt/etc/kubernetes/manifests/etcd.yaml".into())
        );
        assert_eq!(
            detect(&["/etc/ssl/etcd/ssl/member-node1.pem".into()]).unwrap(),
            "kubespray"
        );
        assert!(detect(&["/tmp/x.pem".into()]).is_err());
    }
}
