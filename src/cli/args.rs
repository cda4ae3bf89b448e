//! Raw command-line arguments (clap). Values stay as typed here; [`super::config`] validates
//! them and reads the environment once.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "certs",
    version,
    about = "Inspect, reissue and roll out the PKI of Kubernetes control planes",
    disable_help_subcommand = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read every certificate, key and kubeconfig of a node (or the chain a live endpoint serves)
    Inspect(InspectArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// kubeadm-like tables
    Table,
    /// tables with subject, serial, key, usages and fingerprint
    Wide,
    /// the documented JSON schema (README.md)
    Json,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Files, directories or https://host:port endpoints [default: the standard locations under --root]
    pub targets: Vec<String>,

    /// Treat DIR as the node's `/` (a mounted disk, a backup, a fixture tree)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

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
        let Command::Inspect(i) = args.command;
        assert_eq!(i.targets, ["/etc/kubernetes", "https://10.0.0.1:6443"]);
        assert_eq!(i.output, Output::Json);
        assert_eq!(i.warn_within.as_deref(), Some("30d"));
        assert_eq!(i.root, PathBuf::from("/"));
    }

    #[test]
    fn rejects_unknown_output() {
        assert!(Args::try_parse_from(["certs", "inspect", "-o", "yaml"]).is_err());
    }
}
