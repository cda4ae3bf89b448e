//! Reports in other tools' formats, so that what operators already read and scrape keeps
//! working: kubeadm's `certs check-expiration` ([`kubeadm`]) and x509-certificate-exporter's
//! metrics as a node_exporter textfile ([`prometheus`]).
//!
//! Pure, like [`crate::pki`]: an [`crate::pki::inventory::Inventory`] (and what the caller read
//! from the node) in, text out.

pub mod kubeadm;
pub mod prometheus;

use std::path::Path;

/// `path` as the node names it: relative to `--root` when it lies under it (`/` otherwise).
pub fn node_path(path: &Path, root: &Path) -> String {
    if root != Path::new("/") {
        if let Ok(rel) = path.strip_prefix(root) {
            return format!("/{}", rel.display());
        }
    }
    path.display().to_string()
}
