//! Raw command-line arguments (clap). Values stay as typed here; [`super::config`] validates
//! them and reads the environment once.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "certs",
    version,
    about = "Inspect, reissue and roll out the PKI of Kubernetes control planes",
    disable_help_subcommand = true,
    after_help = super::examples::CERTS
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read every certificate, key and kubeconfig of a node (or the chain a live endpoint serves)
    #[command(after_help = super::examples::INSPECT)]
    Inspect(InspectArgs),
    /// Print the cfssl CSR spec (csr.json) of a certificate, optionally with a SAN edit
    #[command(after_help = super::examples::SPEC)]
    Spec(SpecArgs),
    /// Reissue certificates from the cluster CA with an edited SAN set, into a bundle directory
    #[command(after_help = super::examples::REISSUE)]
    Reissue(ReissueArgs),
    /// Issue a certificate for a new identity made like an existing one (its subject with the
    /// CN replaced, its SANs edited, its usages, a new key), into a bundle for `certs rollout`
    Issue(IssueArgs),
    /// Renew every leaf certificate that expires soon (subject, SANs, key and usages kept), into
    /// one bundle for `certs rollout`
    #[command(after_help = super::examples::RENEW)]
    Renew(RenewArgs),
    /// Before a VIP change or a master retirement: everything that would break
    #[command(after_help = super::examples::PREFLIGHT)]
    Preflight(PreflightArgs),
    /// A VIP add or move, a master retirement or a new master as one bundle: every
    /// certificate, kubeconfig and configuration file of this node the change touches
    Change(ChangeArgs),
    /// Install a reissue bundle: back up, swap, restart in a safe order behind health gates
    #[command(subcommand, after_help = super::examples::ROLLOUT)]
    Rollout(RolloutCommand),
    /// Edit kubeconfigs (server, CA, client certificate) into a bundle for `certs rollout`
    #[command(subcommand, after_help = super::examples::KUBECONFIG)]
    Kubeconfig(KubeconfigCommand),
    /// A change to a whole cluster through Ansible: render one playbook from its inventory that
    /// checks every node, reissues on the CA host and rolls out node by node
    Cluster(ClusterArgs),
    /// Replace a CA in stages (trust both, switch the leaves, drop the old), each a bundle for
    /// `certs rollout`; `status` says which stage a node is in
    #[command(subcommand, name = "rotate-ca", after_help = super::rotate::EXAMPLES)]
    RotateCa(super::rotate::RotateCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(after_help = super::examples::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print a manual page (roff) for certs or one of its subcommands
    #[command(after_help = super::examples::MAN)]
    Man(ManArgs),
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The subcommand whose page to print, e.g. `rollout apply` [default: certs(1) itself]
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

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

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Print the plan for a bundle and prove it can pass; takes every option `apply` takes
    #[command(after_help = super::examples::ROLLOUT_PLAN)]
    Plan(RolloutApplyArgs),
    /// Run the plan: back up, swap, restart one component at a time behind health gates
    #[command(after_help = super::examples::ROLLOUT_APPLY)]
    Apply(RolloutApplyArgs),
    /// Where the recorded rollout stands
    ///
    /// Exit codes: 0 done, or no rollout recorded; 1 interrupted (run `resume` to finish it or
    /// `rollback` to undo it); 3 failed and rolled back (healthy on the old certificates); 4
    /// failed and the rollback failed too (restore by hand from the backup it names).
    #[command(after_help = super::examples::ROLLOUT_STATUS)]
    Status(RolloutStatusArgs),
    /// Continue an interrupted rollout
    #[command(after_help = super::examples::ROLLOUT_RESUME)]
    Resume(RolloutResumeArgs),
    /// Restore the files of the recorded rollout and restart what used them
    #[command(after_help = super::examples::ROLLOUT_ROLLBACK)]
    Rollback(RolloutRollbackArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutPlanArgs {
    /// A bundle directory written by `certs reissue`
    pub bundle: PathBuf,

    /// Restart methods and gates for what the node does not say: kubeadm, kubespray, binary
    /// (kubeasz), or a profile file (JSON) [default: from the node, else from the targets]
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,

    /// The node's `/`: where its manifests, units and files are read, and profile paths resolve
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Restart a component with a command instead: NAME='CMD'; repeatable
    #[arg(long, value_name = "NAME=CMD")]
    pub restart_cmd: Vec<String>,

    /// Also accept targets under DIR, a PKI directory the node's configuration does not name
    /// (targets must otherwise lie in the standard PKI and config locations, or be read by a
    /// component of the node or of the profile); repeatable
    #[arg(long, value_name = "DIR")]
    pub allow_dir: Vec<PathBuf>,

    /// Probe a component at this endpoint instead of the one read from the node:
    /// NAME=https://host:port[/path] (or http:// on loopback); repeatable
    #[arg(long, value_name = "NAME=URL")]
    pub health: Vec<String>,

    /// Verify a component's gate against this CA file [default: the CA that signed the file it
    /// serves, as bundle.json records it]; repeatable
    #[arg(long, value_name = "NAME=FILE")]
    pub health_ca: Vec<String>,

    /// Client certificate a component's gate presents [default: read from the node]; repeatable
    #[arg(long, value_name = "NAME=FILE", requires = "health_key")]
    pub health_cert: Vec<String>,

    /// Key of that client certificate; repeatable
    #[arg(long, value_name = "NAME=FILE", requires = "health_cert")]
    pub health_key: Vec<String>,

    /// Restart this component even if none of its files changed (a kubeconfig it reads did);
    /// repeatable
    #[arg(long, value_name = "NAME")]
    pub restart: Vec<String>,

    /// Leave out the etcd membership steps of a retirement (bundle.json `etcd_membership`):
    /// no snapshot, leader move or member removal
    #[arg(long)]
    pub no_etcd_membership: bool,

    /// Install onto a node whose target files differ from those the bundle was made from (a
    /// rebuilt machine): each changed target must be a certificate whose new certificate pairs
    /// with the key on this node; its current file becomes the one backed up and restored
    #[arg(long)]
    pub rebase: bool,

    /// The plan as lines or JSON; with apply, progress as lines or one JSON event per line
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    /// readable lines
    Text,
    /// the plan as JSON; with apply, one JSON event per line
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutStateArgs {
    /// Where the journal, lock and backups live
    #[arg(long, value_name = "DIR", default_value = "/var/lib/certs")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutStatusArgs {
    #[command(flatten)]
    pub state: RolloutStateArgs,

    /// Lines, or one JSON document (certs.rollout-status/v1)
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutResumeArgs {
    #[command(flatten)]
    pub run: RolloutRunArgs,

    /// Progress as lines, or one JSON event per line
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutRunArgs {
    #[command(flatten)]
    pub state: RolloutStateArgs,

    /// How long a health gate may take
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    pub health_timeout: String,

    /// Pause between health probes
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub health_interval: String,

    /// How long a restart command may take
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    pub restart_timeout: String,

    /// How long a static pod manifest stays parked (the kubelet checks every 20 s)
    #[arg(long, value_name = "DURATION", default_value = "25s")]
    pub park: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutApplyArgs {
    #[command(flatten)]
    pub plan: RolloutPlanArgs,

    #[command(flatten)]
    pub run: RolloutRunArgs,

    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutRollbackArgs {
    /// The backup directory of the recorded rollout [default: the journal's]
    pub backup: Option<PathBuf>,

    #[command(flatten)]
    pub run: RolloutRunArgs,

    /// Progress as lines, or one JSON event per line
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SanArgs {
    /// Add a SAN (IP, email, URI or DNS name, classified like cfssl's hosts); repeatable
    #[arg(long = "add-san", value_name = "SAN")]
    pub add: Vec<String>,

    /// Drop a SAN; it must be present; repeatable
    #[arg(long = "drop-san", value_name = "SAN")]
    pub drop: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// A certificate file or a kubeconfig with an embedded client certificate
    #[arg(required_unless_present = "template", conflicts_with = "template")]
    pub cert: Option<PathBuf>,

    /// Start from a built-in template instead (kubernetes, etcd, etcd-peer, etcd-client, admin,
    /// kube-controller-manager, kube-scheduler, kube-proxy, kubelet, ca, ca-config)
    #[arg(long, value_name = "NAME")]
    pub template: Option<String>,

    #[command(flatten)]
    pub sans: SanArgs,

    /// Output format (cfssl's csr.json is JSON)
    #[arg(short, long, value_enum, default_value_t = SpecOutput::Json)]
    pub output: SpecOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpecOutput {
    /// cfssl's csr.json
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReissueArgs {
    /// Certificate files or kubeconfigs to reissue, all with the same SAN edit
    #[arg(required = true)]
    pub certs: Vec<PathBuf>,

    #[command(flatten)]
    pub sans: SanArgs,

    /// CA certificate [default: the certificate beside the target whose signature verifies it]
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca: Option<PathBuf>,

    /// CA private key (PKCS#1, PKCS#8 or SEC1, unencrypted)
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub ca_key: Option<PathBuf>,

    /// Bundle directory to create [default: ./certs-bundle-<time>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Generate new keys (same algorithm and size unless --key-algo) instead of keeping the
    /// public key
    #[arg(long)]
    pub new_key: bool,

    /// With --new-key: rsa:2048, rsa:4096, ecdsa:256, ecdsa:384, ed25519
    #[arg(long, value_name = "ALGO:SIZE", requires = "new_key")]
    pub key_algo: Option<String>,

    /// Validity of the new certificates [default: the original's validity period]
    #[arg(long, value_name = "DURATION")]
    pub validity: Option<String>,

    /// Print what would be issued; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Issue as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// What happened to each target: lines, or one JSON document (certs.reissue/v1)
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResultOutput {
    /// readable lines
    Text,
    /// one JSON document: each target, its action and why (README.md)
    Json,
}

#[derive(Debug, clap::Args)]
pub struct RenewArgs {
    /// Files or directories to read [default: the standard locations under --root]
    pub paths: Vec<PathBuf>,

    /// Treat DIR as the node's `/` (where the standard locations and kubeconfig references are)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Renew the leaves that expire within DURATION, and those already expired
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub within: String,

    /// Renew every leaf, due or not
    #[arg(long, conflicts_with = "within")]
    pub all: bool,

    /// A CA certificate for the leaves it signed [default: each leaf's CA found on the node]
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca: Option<PathBuf>,

    /// Its private key (PKCS#1, PKCS#8 or SEC1, unencrypted)
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub ca_key: Option<PathBuf>,

    /// Bundle directory to create (nothing is written when nothing is due)
    #[arg(long, value_name = "DIR", required_unless_present = "dry_run")]
    pub out: Option<PathBuf>,

    /// Validity of the new certificates [default: each original's validity period]
    #[arg(long, value_name = "DURATION")]
    pub validity: Option<String>,

    /// Print what would be renewed; write nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Judge what is due and issue as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// What happened to each leaf: lines, or one JSON document (certs.renew/v1)
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// kubeadm-like tables, fitted to the terminal (or COLUMNS): long paths shortened from the
    /// left, the least useful columns left out first
    Table,
    /// every column at full width, with subject, serial, key, usages and fingerprint
    Wide,
    /// the documented JSON schema (README.md)
    Json,
    /// `kubeadm certs check-expiration`'s two tables, byte for byte
    Kubeadm,
    /// the `CertificateExpirationInfo` document `kubeadm certs check-expiration -o json` prints
    KubeadmJson,
    /// node_exporter textfile metrics named as x509-certificate-exporter names them
    Prometheus,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Files, directories or https://host:port endpoints [default: the standard locations under --root]
    pub targets: Vec<String>,

    /// Treat DIR as the node's `/` (a mounted disk, a backup, a fixture tree)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Output format
    #[arg(short, long, value_enum, default_value_t = Output::Table)]
    pub output: Output,

    /// Exit 1 when a certificate is expired, not yet valid, expires within DURATION (e.g. 30d),
    /// or does not match its key
    #[arg(long, value_name = "DURATION")]
    pub warn_within: Option<String>,

    /// Judge validity at this instant (RFC 3339) instead of the current time
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// CA bundle (PEM) to verify endpoints against
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// Show an endpoint's chain without verifying it
    #[arg(long)]
    pub insecure: bool,

    /// Bound on connecting to and reading from an endpoint
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub timeout: String,

    /// With -o prometheus: replace PATH atomically (for node_exporter's textfile collector)
    /// instead of printing
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KubeconfigCommand {
    /// Point kubeconfigs at another apiserver URL (a VIP): only the `server:` line changes
    #[command(after_help = super::examples::KUBECONFIG_SET_SERVER)]
    SetServer(KubeconfigSetServerArgs),
    /// Replace the CA kubeconfigs embed (`certificate-authority-data:`): only that line changes
    #[command(after_help = super::examples::KUBECONFIG_SET_CA)]
    SetCa(KubeconfigSetCaArgs),
    /// Reissue the client certificate kubeconfigs embed or reference, subject, SANs and key kept
    #[command(after_help = super::examples::KUBECONFIG_RENEW)]
    Renew(KubeconfigRenewArgs),
}

/// Where the edited files go: a new bundle, or an existing one.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct BundleDestArgs {
    /// Bundle directory to create (it must not exist, or be empty)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Add the files to this existing bundle (verified intact first; a target it already
    /// replaces is refused)
    #[arg(long, value_name = "DIR")]
    pub into: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct KubeconfigSetServerArgs {
    /// The new server: https://HOST[:PORT]
    pub url: String,

    /// Kubeconfigs to edit
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// The cluster to change [default: every cluster, when they all point at one server]
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,

    /// Treat DIR as the node's `/` (where the absolute files kubeconfigs reference are)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    #[command(flatten)]
    pub dest: BundleDestArgs,
}

#[derive(Debug, clap::Args)]
pub struct KubeconfigSetCaArgs {
    /// The CA certificate(s) to embed (PEM; a bundle of old and new during a CA rotation)
    pub ca_file: PathBuf,

    /// Kubeconfigs to edit
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// The cluster to change [default: every cluster, when they all trust one CA]
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,

    /// Treat DIR as the node's `/` (where the absolute files kubeconfigs reference are)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    #[command(flatten)]
    pub dest: BundleDestArgs,
}

#[derive(Debug, clap::Args)]
pub struct KubeconfigRenewArgs {
    /// Kubeconfigs whose client certificates to renew
    #[arg(required = true)]
    pub files: Vec<PathBuf>,

    /// Treat DIR as the node's `/` (where the absolute files kubeconfigs reference are)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// CA certificate [default: the CA found on the node whose signature verifies each one]
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca: Option<PathBuf>,

    /// CA private key (PKCS#1, PKCS#8 or SEC1, unencrypted)
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub ca_key: Option<PathBuf>,

    #[command(flatten)]
    pub dest: BundleDestArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inspect() {
        let args = Args::try_parse_from([
            "certs",
            "inspect",
            "/etc/kubernetes",
            "https://10.0.0.1:6443",
            "-o",
            "json",
            "--warn-within",
            "30d",
            "--ca",
            "ca.crt",
        ])
        .unwrap();
        let Command::Inspect(i) = args.command else {
            panic!("not inspect")
        };
        assert_eq!(i.targets, ["/etc/kubernetes", "https://10.0.0.1:6443"]);
        assert_eq!(i.output, Output::Json);
        assert_eq!(i.warn_within.as_deref(), Some("30d"));
        assert_eq!(i.root, PathBuf::from("/"));
    }

    #[test]
    fn parses_reissue() {
        let args = Args::try_parse_from([
            "certs",
            "reissue",
            "a.pem",
            "b.pem",
            "--drop-san",
            "172.72.0.96",
            "--drop-san",
            "172.72.0.97",
            "--ca",
            "ca.pem",
            "--ca-key",
            "ca-key.pem",
            "--new-key",
            "--dry-run",
        ])
        .unwrap();
        let Command::Reissue(r) = args.command else {
            panic!("not reissue")
        };
        assert_eq!(r.certs.len(), 2);
        assert_eq!(r.sans.drop, ["172.72.0.96", "172.72.0.97"]);
        assert!(r.new_key && r.dry_run);
        // --ca without --ca-key is a usage error, and so is a spec with neither CERT nor template.
        assert!(Args::try_parse_from(["certs", "reissue", "a.pem", "--ca", "ca.pem"]).is_err());
        assert!(Args::try_parse_from(["certs", "spec"]).is_err());
    }

    #[test]
    fn parses_renew() {
        let args = Args::try_parse_from([
            "certs", "renew", "--root", "/mnt", "--within", "60d", "--out", "b", "-o", "json",
        ])
        .unwrap();
        let Command::Renew(r) = args.command else {
            panic!("not renew")
        };
        assert_eq!(r.within, "60d");
        assert_eq!(r.output, ResultOutput::Json);
        assert!(r.paths.is_empty() && !r.all);
        // --out is needed unless nothing is written; --all and --within say different things.
        assert!(Args::try_parse_from(["certs", "renew"]).is_err());
        assert!(Args::try_parse_from(["certs", "renew", "--dry-run"]).is_ok());
        assert!(
            Args::try_parse_from(["certs", "renew", "--all", "--within", "5d", "--dry-run"])
                .is_err()
        );
    }

    #[test]
    fn rejects_unknown_output() {
        assert!(Args::try_parse_from(["certs", "inspect", "-o", "yaml"]).is_err());
    }
}

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
#[command(after_help = "Example:
  # kubespray/kubean scaling up: node4's etcd member certificate, made like node1's
  certs issue --like /etc/ssl/etcd/ssl/member-node1.pem --cn etcd-member-node4 \\
      --add-san 10.6.0.14 --add-san node4 --out /root/node4-certs")]
pub struct IssueArgs {
    /// The certificate to make the new one like: subject (only the CN value replaced), SANs,
    /// key usages, extended key usages, other extensions, key algorithm and size, CA
    #[arg(long, value_name = "CERT")]
    pub like: PathBuf,

    /// The common name of the new identity
    #[arg(long, value_name = "NAME")]
    pub cn: String,

    #[command(flatten)]
    pub sans: SanArgs,

    /// File name of the new certificate, beside the template [default: the template's with the
    /// part of the CN that changes replaced: member-node1.pem -> member-node4.pem]
    #[arg(long, value_name = "FILE")]
    pub name: Option<String>,

    /// CA certificate [default: the certificate beside the template whose signature verifies it]
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca: Option<PathBuf>,

    /// CA private key (PKCS#1, PKCS#8 or SEC1, unencrypted)
    #[arg(long, value_name = "FILE", requires = "ca")]
    pub ca_key: Option<PathBuf>,

    /// Key of the new identity: rsa:2048, rsa:4096, ecdsa:256, ecdsa:384, ed25519 [default:
    /// the template's algorithm and size]
    #[arg(long, value_name = "ALGO:SIZE")]
    pub key_algo: Option<String>,

    /// Validity of the new certificate [default: the template's validity period]
    #[arg(long, value_name = "DURATION")]
    pub validity: Option<String>,

    /// Issue as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Bundle directory to create (it must not exist, or be empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// What was issued: lines, or one JSON document (certs.issue/v1)
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
    #[command(after_help = super::examples::CLUSTER_EXPORT)]
    Export(ClusterExportArgs),
    /// On the CA host (the playbook's play 2): one node's bundle from its export, signed with
    /// the CA keys of this host; targets as on the node (bundle.json `root` is `/`)
    #[command(after_help = super::examples::CLUSTER_REISSUE)]
    Reissue(Box<ClusterReissueArgs>),
    /// Render a playbook running one `certs rotate-ca` stage (trust, switch, finish) on every
    /// node of the inventory
    RotateCa(Box<super::cluster_rotate::RotateArgs>),
    /// On the CA host (the rotate-ca playbook's play 1): the new CA, made there once by trust
    RotateCaNewCa(Box<super::cluster_rotate::NewCaArgs>),
    /// On the CA host (the rotate-ca switch playbook's play 3): one node's switch bundle from
    /// its export, signed with the new CA key of this host
    RotateCaReissue(Box<super::cluster_rotate::ReissueArgs>),
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
