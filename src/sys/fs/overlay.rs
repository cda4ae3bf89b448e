//! The node as it will be after a bundle: while [`with`] runs, every read through
//! this module (and [`crate::sys::node`]) of a file the overlay holds returns the overlay's
//! bytes instead of the disk's. Nothing is written. `certs change` evaluates its preflight
//! checks against the node after the change this way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

static FILES: RwLock<Option<HashMap<PathBuf, Vec<u8>>>> = RwLock::new(None);

/// Runs `f` with `files` (absolute paths) read in place of the disk's.
pub fn with<T>(files: HashMap<PathBuf, Vec<u8>>, f: impl FnOnce() -> T) -> T {
    *FILES.write().unwrap_or_else(|p| p.into_inner()) = Some(files);
    let out = f();
    *FILES.write().unwrap_or_else(|p| p.into_inner()) = None;
    out
}

pub fn get(path: &Path) -> Option<Vec<u8>> {
    let guard = FILES.read().unwrap_or_else(|p| p.into_inner());
    guard.as_ref()?.get(path).cloned()
}
