//! `certs preflight`'s arguments.

use std::path::PathBuf;

use super::PlanOutput;

#[derive(Debug, clap::Args)]
pub struct PreflightArgs {
    /// Files or directories to read [default: the standard locations under --root]
    pub paths: Vec<PathBuf>,

    /// The load-balancer address the apiservers will be reached at: ADDR or ADDR:PORT (6443)
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub vip: Option<String>,

    /// A master to retire (address or node name); repeatable
    #[arg(long, value_name = "ADDR|NODE")]
    pub retire: Vec<String>,

    /// A master that stays (address or node name); repeatable
    #[arg(long, value_name = "ADDR|NODE")]
    pub keep: Vec<String>,

    /// A TLS endpoint whose served certificate must chain to the cluster CA and cover its host
    #[arg(long, value_name = "URL")]
    pub endpoint: Vec<String>,

    /// An etcd client URL to ask for membership, health and leader (v3 gateway)
    #[arg(long, value_name = "URL")]
    pub etcd: Vec<String>,

    /// Client certificate for etcd [default: apiserver-etcd-client / healthcheck-client / etcd.pem found]
    #[arg(long, value_name = "FILE", requires = "etcd_key")]
    pub etcd_cert: Option<PathBuf>,

    /// Key of the etcd client certificate
    #[arg(long, value_name = "FILE", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,

    /// CA for etcd's serving certificate [default: the etcd CA found]
    #[arg(long, value_name = "FILE")]
    pub etcd_ca: Option<PathBuf>,

    /// Report anything expiring within this window
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub window: String,

    /// Treat DIR as the node's `/` (where its files, units and manifests are read)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Where rollout backups will go (checked writable with room)
    #[arg(long, value_name = "DIR", default_value = "/var/lib/certs")]
    pub state_dir: PathBuf,

    /// Bound on every network probe
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub timeout: String,

    /// Check only what is on disk: no TLS probe of the VIP
    #[arg(long)]
    pub offline: bool,

    /// Judge validity at this instant (RFC 3339) instead of the current time
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// One line per check (wrapped to the terminal), or one JSON document (certs.preflight/v1)
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}
