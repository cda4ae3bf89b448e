//! `certs inspect`'s arguments and its output formats.

use std::path::PathBuf;

use clap::ValueEnum;

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
