//! `certs kubeconfig`'s arguments (set-server, set-ca, renew).

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KubeconfigCommand {
    /// Point kubeconfigs at another apiserver URL (a VIP): only the `server:` line changes
    #[command(after_help = crate::cli::examples::KUBECONFIG_SET_SERVER)]
    SetServer(KubeconfigSetServerArgs),
    /// Replace the CA kubeconfigs embed (`certificate-authority-data:`): only that line changes
    #[command(after_help = crate::cli::examples::KUBECONFIG_SET_CA)]
    SetCa(KubeconfigSetCaArgs),
    /// Reissue the client certificate kubeconfigs embed or reference, subject, SANs and key kept
    #[command(after_help = crate::cli::examples::KUBECONFIG_RENEW)]
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
