//! The arguments of the commands that issue certificates: `spec`, `reissue`, `renew`, `issue`.

use std::path::PathBuf;

use clap::ValueEnum;

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
