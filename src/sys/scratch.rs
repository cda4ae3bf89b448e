//! Directories `certs cluster` owns: the rendered playbook's directory, and on the CA host the
//! scratch tree a node's export is laid out in while its change is worked out. A scratch tree
//! carries a marker file, and only a directory with the marker is ever removed.

use std::path::{Path, PathBuf};

use crate::sys::error::{Error, Result};

/// The file that marks a directory as a scratch tree of `certs cluster reissue`.
pub const MARKER: &str = ".certs-cluster-scratch";

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `files` (relative path, mode, bytes) into `dir`, which must be new or empty.
pub fn write_new_dir(dir: &Path, files: &[(PathBuf, u32, Vec<u8>)]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(Error::Input {
                path: dir.to_path_buf(),
                expected: "a new or empty directory".into(),
                found: "a directory with files in it (never overwritten)".into(),
            });
        }
    }
    for (rel, mode, bytes) in files {
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(Error::Input {
                path: rel.clone(),
                expected: "a relative path inside the directory".into(),
                found: "an absolute path or `..`".into(),
            });
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_err(parent))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(*mode)
            .open(&path)
            .map_err(write_err(&path))?;
        std::io::Write::write_all(&mut f, bytes).map_err(write_err(&path))?;
    }
    Ok(())
}

/// Lays out a scratch tree in `dir` (an earlier scratch tree there is removed first; anything
/// else there is refused).
pub fn scratch_tree(dir: &Path, files: &[(PathBuf, u32, Vec<u8>)]) -> Result<()> {
    remove_scratch(dir)?;
    let mut all = files.to_vec();
    all.push((PathBuf::from(MARKER), 0o600, Vec::new()));
    write_new_dir(dir, &all)
}

/// Removes a scratch tree (a directory holding [`MARKER`]); nothing there is fine; an empty
/// directory is removed too; a directory without the marker is refused.
pub fn remove_scratch(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Write {
                path: dir.to_path_buf(),
                source,
            })
        }
        Ok(mut entries) => {
            if entries.next().is_some() && !dir.join(MARKER).is_file() {
                return Err(Error::Input {
                    path: dir.to_path_buf(),
                    expected: format!("a scratch directory of certs cluster (with {MARKER})"),
                    found: "a directory with other files; not removed".into(),
                });
            }
        }
    }
    std::fs::remove_dir_all(dir).map_err(write_err(dir))
}
