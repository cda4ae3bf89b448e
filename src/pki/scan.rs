//! `scan`: read a node's PKI from paths (or its standard locations) into an [`Inventory`].

use std::path::{Path, PathBuf};

use super::inventory::{Inventory, Options};
use crate::error::{Error, Result};
use crate::sys::fs;

/// Where kubeadm, kubespray/kubean, binary/kubeasz clusters and the kubelet keep their PKI.
pub const STANDARD_LOCATIONS: &[&str] = &[
    "/etc/kubernetes",
    "/etc/ssl/etcd/ssl",
    "/etc/etcd/ssl",
    "/var/lib/kubelet/pki",
];

pub struct ScanRequest<'a> {
    /// Files or directories; empty means the standard locations under `root`.
    pub paths: &'a [PathBuf],
    /// The node's `/`: `/` on the node itself, a mount point or a fixture tree otherwise.
    pub root: &'a Path,
    pub now: i64,
    pub warn_within: i64,
}

/// The paths a scan reads: those given, or the standard locations that exist under `root`.
pub fn resolve_paths(paths: &[PathBuf], root: &Path) -> Result<Vec<PathBuf>> {
    if !paths.is_empty() {
        return Ok(paths.to_vec());
    }
    let candidates: Vec<PathBuf> = STANDARD_LOCATIONS
        .iter()
        .map(|p| fs::under_root(root, Path::new(p)))
        .collect();
    let found: Vec<PathBuf> = candidates
        .iter()
        .filter(|p| crate::sys::fs::exists(p))
        .cloned()
        .collect();
    if found.is_empty() {
        return Err(Error::NoStandardLocation {
            tried: candidates.iter().map(|p| p.display().to_string()).collect(),
        });
    }
    Ok(found)
}

pub fn scan(req: &ScanRequest) -> Result<Inventory> {
    let paths = resolve_paths(req.paths, req.root)?;
    let opts = Options {
        now: req.now,
        warn_within: req.warn_within,
        root: req.root,
    };
    // The inventory reads and decodes the files on all cores as the walk lists them.
    Inventory::build_listed(
        fs::listing(&paths).map(|listed| listed.map_err(Into::into)),
        &opts,
        &fs::read_entry,
        &fs::read_regular,
    )
}
