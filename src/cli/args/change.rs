//! `certs change`'s and `certs cluster`'s arguments, and what a change moves.

use std::path::PathBuf;

use clap::Subcommand;

use super::{ResultOutput, RolloutRunArgs};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # kubeadm, one master becomes HA behind an HAProxy VIP
  certs change --vip 10.21.22.100 --out /root/vip-bundle
  # kubeasz: the external VIP moves (port kept)
  certs change --vip 192.168.1.40:8443 --old-vip 192.168.1.39:8443
  # binary cluster: two of three masters retire, then install on this node
  certs change --retire etcd2 --retire 172.72.0.97 --apply --state-dir /var/lib/certs")]
pub struct ChangeArgs {
    /// Files or directories to read [default: the standard locations under --root, and
    /// /root/.kube/config and $HOME/.kube/config]
    pub paths: Vec<PathBuf>,

    /// The node's `/`: where its manifests, units, configuration and PKI are read
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    #[command(flatten)]
    pub spec: ChangeSpecArgs,

    /// CA certificate to sign with [default: found beside each certificate]
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca: Option<PathBuf>,

    /// Its private key
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub ca_key: Option<PathBuf>,

    /// Bundle directory to create [default: ./certs-change-<time>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Issue as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Continue into `certs rollout apply` with the bundle (else its plan is printed)
    #[arg(long)]
    pub apply: bool,

    /// Write the bundle even if preflight, run on the node as the change leaves it, fails
    #[arg(long)]
    pub force: bool,

    /// Probe nothing: the rollout plan leaves out the etcd membership steps, which read the
    /// live member list (they stay in the bundle for `certs rollout` on the node)
    #[arg(long, conflicts_with = "apply")]
    pub offline: bool,

    /// For the rollout: restart a component with a command instead: NAME='CMD'; repeatable
    #[arg(long, value_name = "NAME=CMD")]
    pub restart_cmd: Vec<String>,

    /// For the rollout: probe a component here instead: NAME=https://host:port[/path]
    #[arg(long, value_name = "NAME=URL")]
    pub health: Vec<String>,

    #[command(flatten)]
    pub run: RolloutRunArgs,

    /// What changed: lines, or one JSON document (certs.change/v1)
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Example:
  # kubespray: retire node3 (its etcd member too), then run the playbook
  certs cluster --inventory inventory/mycluster/hosts.yaml --retire node3 --out certs-retire
  ansible-playbook -i inventory/mycluster/hosts.yaml certs-retire/playbook.yml"
)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: Option<ClusterCommand>,

    #[command(flatten)]
    pub render: ClusterRenderArgs,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClusterRenderArgs {
    /// The Ansible inventory (INI or YAML) of a kubespray/kubean cluster (groups
    /// kube_control_plane, etcd, kube_node) or a kubeasz one (kube_master, etcd, kube_node)
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,

    /// The load-balancer address clients will use: ADDR or ADDR:PORT (6443)
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub vip: Option<String>,

    /// The VIP clients use now, for a VIP move
    #[arg(long, value_name = "ADDR[:PORT]", requires = "vip")]
    pub old_vip: Option<String>,

    /// A master to retire: inventory host name or address; repeatable
    #[arg(long, value_name = "HOST|ADDR")]
    pub retire: Vec<String>,

    /// A new master joining: NAME=ADDR; repeatable
    #[arg(long, value_name = "NAME=ADDR")]
    pub add_master: Vec<String>,

    /// Another SAN for the apiserver serving certificates; repeatable
    #[arg(long = "add-san", value_name = "SAN")]
    pub add_san: Vec<String>,

    /// A SAN to drop from the apiserver serving certificates; repeatable
    #[arg(long = "drop-san", value_name = "SAN")]
    pub drop_san: Vec<String>,

    /// The host holding the CA keys, where every certificate is reissued [default: the first
    /// control-plane host that stays]
    #[arg(long, value_name = "HOST")]
    pub ca_host: Option<String>,

    /// The certs binary the playbook copies to every host [default: this one]
    #[arg(long, value_name = "FILE")]
    pub certs_binary: Option<PathBuf>,

    /// Workers whose node-local proxy reloads at once (play 4's `serial`)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub worker_serial: u32,

    /// Let preflight probe live endpoints (the VIP, etcd) instead of checking files only
    #[arg(long)]
    pub online: bool,

    /// Directory to write the playbook, its variables and README into (new or empty)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// On a node (the playbook's play 1): the files a change reads, private keys and
    /// kubeconfigs that embed one left out, as one JSON document on stdout
    #[command(after_help = crate::cli::examples::CLUSTER_EXPORT)]
    Export(ClusterExportArgs),
    /// On the CA host (the playbook's play 2): one node's bundle from its export, signed with
    /// the CA keys of this host; targets as on the node (bundle.json `root` is `/`)
    #[command(after_help = crate::cli::examples::CLUSTER_REISSUE)]
    Reissue(Box<ClusterReissueArgs>),
    /// Render a playbook running one `certs rotate-ca` stage (trust, switch, finish) on every
    /// node of the inventory
    RotateCa(Box<crate::cli::cluster_rotate::RotateArgs>),
    /// On the CA host (the rotate-ca playbook's play 1): the new CA, made there once by trust
    RotateCaNewCa(Box<crate::cli::cluster_rotate::NewCaArgs>),
    /// On the CA host (the rotate-ca switch playbook's play 3): a node's leaves of the old CA
    /// (certificates only) signed again by the new CA of this host; no key comes out
    RotateCaSign(Box<crate::cli::cluster_rotate::SignArgs>),
}

#[derive(Debug, clap::Args)]
pub struct ClusterExportArgs {
    /// The node's `/`
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ClusterReissueArgs {
    /// The node's export (`certs cluster export` on the node)
    #[arg(long, value_name = "FILE")]
    pub export: PathBuf,

    /// The CA host's `/`: where its CA certificates and keys are read
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Where the node's files are laid out while its change is worked out (removed after)
    #[arg(long, value_name = "DIR")]
    pub scratch: PathBuf,

    /// The node's bundle directory (replaced when it holds a bundle of an earlier run)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub spec: ChangeSpecArgs,

    /// Leave the etcd membership steps out of this node's bundle (they run on one host only)
    #[arg(long)]
    pub no_etcd_membership: bool,

    /// Issue as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Text lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

/// What a change moves, as `certs change` and `certs cluster reissue` take it.
#[derive(Debug, Clone, clap::Args)]
pub struct ChangeSpecArgs {
    /// The load-balancer address clients will use: ADDR or ADDR:PORT (6443)
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub vip: Option<String>,

    /// The VIP clients use now, for a VIP move: kubeconfigs on it move to --vip; its SAN stays
    /// unless --drop-san names it
    #[arg(long, value_name = "ADDR[:PORT]", requires = "vip")]
    pub old_vip: Option<String>,

    /// A master to retire: etcd member name, node name or address; repeatable
    #[arg(long, value_name = "NODE|ADDR")]
    pub retire: Vec<String>,

    /// A new master joining: its certificates-shared SANs, --etcd-servers, --initial-cluster
    /// and proxy upstreams gain it; repeatable
    #[arg(long, value_name = "NAME=ADDR")]
    pub add_master: Vec<String>,

    /// Another SAN for the apiserver serving certificates; repeatable
    #[arg(long = "add-san", value_name = "SAN")]
    pub add_san: Vec<String>,

    /// A SAN to drop from the apiserver serving certificates; repeatable
    #[arg(long = "drop-san", value_name = "SAN")]
    pub drop_san: Vec<String>,
}
