//! A stage's bundle: the files it changes, `bundle.json` as `certs rollout` reads it, with the
//! `root` it was made under and `rotate_ca`, which says which stage it installs and from which
//! (fields added to `certs.bundle/v1`; the rollout ignores them, `certs rollout rollback`
//! returns the files, and so the node, to the stage before).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::edit::bundle::NewFile;
use crate::error::{Error, Result};
use crate::pki::cert::CertInfo;
use crate::rotate::stage::Stage;

pub struct StageBundle<'a> {
    /// `trust`, `switch` or `finish`.
    pub stage: &'static str,
    pub from: Stage,
    pub to: Stage,
    pub root: &'a Path,
    pub out: &'a Path,
    pub now: i64,
    /// The node's signing CA file and its subject: the bundle's `ca`.
    pub ca: (String, String),
    pub old: &'a CertInfo,
    pub new: &'a CertInfo,
    /// Where the new CA's certificate and key are on the CA host (`null` when not known).
    pub new_files: (Value, Value),
    pub files: &'a [NewFile],
}

pub fn write(b: &StageBundle) -> Result<()> {
    let mut manifest = crate::edit::bundle::manifest(
        &crate::duration::rfc3339(b.now),
        Some(b.ca.clone()),
        b.files,
    );
    manifest["root"] = json!(b.root);
    manifest["rotate_ca"] = json!({
        "stage": b.stage,
        "from": b.from,
        "to": b.to,
        "old_ca": {"subject": b.old.subject, "serial": b.old.serial, "sha256": b.old.sha256},
        "new_ca": {"subject": b.new.subject, "serial": b.new.serial, "sha256": b.new.sha256,
                   "certificate": b.new_files.0, "key": b.new_files.1},
    });
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Usage(e.to_string()))?;
    let written: Vec<(PathBuf, u32, Vec<u8>)> = b
        .files
        .iter()
        .map(|f| (f.bundle_path.clone(), f.mode, f.contents.clone()))
        .collect();
    crate::sys::fs::write_bundle(b.out, &written, &bytes).map_err(crate::error::Error::from)
}

/// The install line printed after a bundle is written.
pub fn install_line(out: &Path, root: &Path, files: usize) -> String {
    let root = if root == Path::new("/") {
        String::new()
    } else {
        format!(" --root {}", root.display())
    };
    format!(
        "bundle: {} ({files} file(s)); install it with: certs rollout apply {}{root}",
        out.display(),
        out.display()
    )
}
