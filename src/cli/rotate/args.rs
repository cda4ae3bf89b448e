//! The arguments of each `certs rotate-ca` stage.

use std::path::PathBuf;

use crate::cli::args::ResultOutput;

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The CA being replaced: a PEM file whose first certificate (other than --new-ca) is it
    #[arg(value_name = "CA_CERT")]
    pub ca_cert: PathBuf,

    /// More files or directories to read (kubeconfigs; CA files holding the old CA) besides
    /// the standard locations under --root, /root/.kube/config and the files the node's
    /// components name
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The node's `/`: where its manifests, units, configuration and PKI are read
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// The new CA's certificate [default: one made like the old CA, written beside the bundle,
    /// or the one the node's anchors already hold beside the old]; without --new-ca-key (its
    /// key kept on the CA host, as `certs cluster rotate-ca` does) the certificate alone
    #[arg(long, value_name = "FILE")]
    pub new_ca: Option<PathBuf>,

    /// The new CA's private key (it must pair with --new-ca)
    #[arg(long, value_name = "FILE", requires = "new_ca")]
    pub new_ca_key: Option<PathBuf>,

    /// Bundle directory to create (a new CA this run makes goes to DIR-new-ca/)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Make the new CA as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Output: readable lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, clap::Args)]
pub struct SwitchArgs {
    /// The CA being replaced (the copy kept before `trust`)
    #[arg(value_name = "CA_CERT")]
    pub ca_cert: PathBuf,

    /// More files or directories to read besides the standard locations under --root
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The node's `/`
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// The new CA's certificate (the one the trust stage installed)
    #[arg(long, value_name = "FILE")]
    pub new_ca: PathBuf,

    /// The new CA's private key (it must pair with --new-ca): it signs the leaves (unless
    /// --signed) and becomes the key of the node's signing CA files; needed only where the
    /// node holds the old CA's key
    #[arg(long, value_name = "FILE", required_unless_present = "signed")]
    pub new_ca_key: Option<PathBuf>,

    /// The node's leaves already signed by the new CA (PEM certificates, from `certs cluster
    /// rotate-ca-sign` on the CA host): each spliced into the node's own file in place of the
    /// leaf with its subject, SANs, usages and public key; anything else refused
    #[arg(long, value_name = "FILE")]
    pub signed: Option<PathBuf>,

    /// Bundle directory to create
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Sign as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Output: readable lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, clap::Args)]
pub struct LeavesArgs {
    /// The CA being replaced (the copy kept before `trust`)
    #[arg(value_name = "CA_CERT")]
    pub ca_cert: PathBuf,

    /// More files or directories to read besides the standard locations under --root
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The node's `/`
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// The new CA's certificate
    #[arg(long, value_name = "FILE")]
    pub new_ca: PathBuf,

    /// Read the node as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Output: the certificates as PEM after a summary line, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, clap::Args)]
pub struct FinishArgs {
    /// The CA being replaced (the copy kept before `trust`)
    #[arg(value_name = "CA_CERT")]
    pub ca_cert: PathBuf,

    /// More files or directories to read besides the standard locations under --root
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The node's `/`
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// The new CA's certificate
    #[arg(long, value_name = "FILE")]
    pub new_ca: PathBuf,

    /// Bundle directory to create
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Output: readable lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The CA being replaced (the copy kept before `trust`)
    #[arg(value_name = "CA_CERT")]
    pub ca_cert: PathBuf,

    /// More files or directories to read besides the standard locations under --root
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The node's `/`
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// The new CA's certificate [default: the one the node's anchors hold beside the old]
    #[arg(long, value_name = "FILE")]
    pub new_ca: Option<PathBuf>,

    /// Output: readable lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}
