//! `certs cluster`, resolved: rendering and exporting read no clock; `cluster reissue` has the
//! change's options checked as `certs change` parses them, its directories made absolute and
//! the clock read once.

use std::path::PathBuf;

use crate::change::Endpoint;
use crate::cli::args::{
    ClusterArgs, ClusterCommand, ClusterExportArgs, ClusterReissueArgs, ClusterRenderArgs,
};
use crate::error::{Error, Result};
use crate::spec::san::SanEdit;

/// `certs cluster …`, resolved.
#[derive(Debug)]
pub enum ClusterConfig {
    Render(Box<ClusterRenderArgs>),
    Export(ClusterExportArgs),
    Reissue(Box<ClusterReissue>),
    /// `certs cluster rotate-ca` and the two steps its playbook runs on the CA host.
    RotateCa(Box<crate::cli::cluster_rotate::RotateArgs>),
    RotateCaNewCa(Box<crate::cli::cluster_rotate::NewCaArgs>),
    RotateCaSign(Box<crate::cli::cluster_rotate::SignArgs>),
}

/// `certs cluster reissue`, resolved.
#[derive(Debug)]
pub struct ClusterReissue {
    pub args: ClusterReissueArgs,
    /// The CA host's `/`, the scratch directory and the bundle directory, absolute.
    pub ca_root: PathBuf,
    pub scratch: PathBuf,
    pub out: PathBuf,
    pub now: i64,
}

pub fn cluster(a: ClusterArgs) -> Result<ClusterConfig> {
    Ok(match a.command {
        None => ClusterConfig::Render(Box::new(a.render)),
        Some(ClusterCommand::Export(e)) => ClusterConfig::Export(e),
        Some(ClusterCommand::Reissue(r)) => {
            let s = &r.spec;
            check_change_options(&s.vip, &s.old_vip, &s.add_master, &s.add_san, &s.drop_san)?;
            let now = super::now(r.now.as_deref())?;
            ClusterConfig::Reissue(Box::new(ClusterReissue {
                ca_root: super::absolute(&r.root)?,
                scratch: super::absolute(&r.scratch)?,
                out: super::absolute(&r.out)?,
                now,
                args: *r,
            }))
        }
        Some(ClusterCommand::RotateCa(r)) => ClusterConfig::RotateCa(r),
        Some(ClusterCommand::RotateCaNewCa(r)) => ClusterConfig::RotateCaNewCa(r),
        Some(ClusterCommand::RotateCaSign(r)) => ClusterConfig::RotateCaSign(r),
    })
}

/// The options of the change must parse as `certs change`'s do.
pub(in crate::cli) fn check_change_options(
    vip: &Option<String>,
    old_vip: &Option<String>,
    add_master: &[String],
    add_san: &[String],
    drop_san: &[String],
) -> Result<()> {
    for (flag, v) in [("--vip", vip), ("--old-vip", old_vip)] {
        if let Some(v) = v {
            Endpoint::parse(v).map_err(|e| Error::Usage(format!("{flag}: {e}")))?;
        }
    }
    for m in add_master {
        let (n, addr) = m
            .split_once('=')
            .filter(|(n, a)| !n.is_empty() && !a.is_empty())
            .ok_or_else(|| {
                Error::Usage(format!("--add-master: expected NAME=ADDR, found `{m}`"))
            })?;
        Endpoint::parse(addr).map_err(|e| Error::Usage(format!("--add-master {n}: {e}")))?;
    }
    SanEdit::parse(add_san, drop_san).map_err(Error::from)?;
    Ok(())
}
