//! `certs preflight`: before a VIP change or a master retirement, everything that would break —
//! each check a small function returning [`Check`]s with an id, a status, a message naming the
//! files and addresses, and the command that fixes a failure.

pub mod checks;
pub mod error;
pub mod etcd;
pub mod names;
pub mod run;

pub use run::{run, Config, Report};

pub use error::Error;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Pass,
            message: message.into(),
            fix: None,
        }
    }
    pub fn warn(id: &'static str, message: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            id,
            status: Status::Warn,
            message: message.into(),
            fix,
        }
    }
    pub fn fail(id: &'static str, message: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            id,
            status: Status::Fail,
            message: message.into(),
            fix,
        }
    }
}

/// A configuration file that may name masters: static pod manifests, systemd units, node-local
/// proxy configs.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: std::path::PathBuf,
    pub text: String,
}

/// Where such files live on the nodes of each layout (relative to the node's `/`); the units
/// and manifests the node's components are read from are added to these.
pub const CONFIG_LOCATIONS: &[&str] = &[
    "/etc/kubernetes/manifests",
    "/etc/systemd/system",
    "/etc/kube-lb/conf",
    "/etc/nginx",
    "/etc/haproxy",
    "/etc/etcd.env",
    "/etc/etcd/etcd.conf",
];

/// Kubeconfigs read besides the PKI's standard locations (relative to the node's `/`): the
/// administrator's, where kubeasz and most guides copy admin.conf. `$HOME/.kube/config` is
/// added for the user running preflight.
pub const KUBECONFIG_LOCATIONS: &[&str] = &["/root/.kube/config"];
