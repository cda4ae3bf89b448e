//! Whether a directory is writable and how much room it has.

use std::path::{Path, PathBuf};

use crate::sys::error::{Error, Result};

/// Proves that `dir` could take files, without creating it: a probe file is created (never over
/// an existing one) and removed in `dir` when it exists, else in its nearest existing ancestor,
/// where `dir` would be created. Returns the directory probed and the bytes free there (from
/// `df`, 0 when unknown).
pub fn probe_writable(dir: &Path) -> Result<(PathBuf, u64)> {
    let mut at = dir.to_path_buf();
    loop {
        if at.as_os_str().is_empty() {
            at = PathBuf::from(".");
        }
        match std::fs::metadata(&at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(Error::NotWritable(format!(
                    "{} is not a directory",
                    at.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && at.pop() => {}
            Err(e) => return Err(Error::NotWritable(format!("{}: {e}", at.display()))),
        }
    }
    let probe = at.join(format!(".certs-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            Error::NotWritable(format!("cannot create a file in {}: {e}", at.display()))
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok((at.clone(), df_free(&at)?.unwrap_or(0)))
}

/// The bytes free for an unprivileged writer (`df -Pk`'s "Available") on the file system that
/// holds `dir`, or would hold it: its nearest existing ancestor is asked. Writes nothing. `None`
/// when `df` cannot tell.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let mut at = dir.to_path_buf();
    loop {
        if at.as_os_str().is_empty() {
            at = PathBuf::from(".");
        }
        if std::fs::metadata(&at).is_ok() || !at.pop() {
            break;
        }
    }
    df_free(&at).ok().flatten()
}

/// `df -Pk PATH`'s available KiB, in bytes.
fn df_free(at: &Path) -> Result<Option<u64>> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(at)
        .output()
        .map_err(|e| Error::Df(e.to_string()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kib| kib.saturating_mul(1024)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_bytes_asks_the_nearest_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let here = free_bytes(dir.path()).unwrap();
        assert!(here > 0);
        let deeper = dir.path().join("state/snapshots");
        let there = free_bytes(&deeper).unwrap();
        // Same file system; others may write meanwhile.
        assert!(there.abs_diff(here) < 1 << 30, "{here} {there}");
        assert!(
            crate::sys::fs::is_absent(&dir.path().join("state")),
            "nothing created"
        );
    }
}
