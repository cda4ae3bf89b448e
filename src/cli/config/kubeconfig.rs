//! `certs kubeconfig set-server | set-ca | renew`, resolved: the node's root made absolute and
//! the clock read once (the bundle records when it was made; renew issues as of it).

use std::path::PathBuf;

use super::absolute;
use crate::cli::args::KubeconfigCommand;
use crate::error::Result;

/// `certs kubeconfig …`, resolved.
#[derive(Debug)]
pub struct KubeconfigConfig {
    pub command: KubeconfigCommand,
    /// `--root`, absolute.
    pub root: PathBuf,
    pub now: i64,
}

pub fn kubeconfig(command: KubeconfigCommand) -> Result<KubeconfigConfig> {
    let root = match &command {
        KubeconfigCommand::SetServer(a) => absolute(&a.root)?,
        KubeconfigCommand::SetCa(a) => absolute(&a.root)?,
        KubeconfigCommand::Renew(a) => absolute(&a.root)?,
    };
    Ok(KubeconfigConfig {
        command,
        root,
        now: super::now(None)?,
    })
}
