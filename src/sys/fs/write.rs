//! Writing: atomic, synced writes of files and bundles, moves, and streamed files that appear
//! whole or not at all.

use std::path::{Path, PathBuf};

use super::*;
use crate::sys::error::{Error, Result};

/// Reads one file the user named (a CA bundle, a spec): any failure is an error naming it.
/// Removes a bundle directory this run wrote (`bundle.json` must be in it: never anything else).
pub fn remove_bundle(dir: &Path) -> Result<()> {
    if !dir.join("bundle.json").is_file() {
        return Err(Error::Input {
            path: dir.to_path_buf(),
            expected: "a bundle directory (with bundle.json) to remove".into(),
            found: "no bundle.json".into(),
        });
    }
    std::fs::remove_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })
}

/// Removes a file if it is there; a missing file is not an error.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes a bundle into `dir`, which must not exist yet (or be an empty directory): every file
/// with its mode (private keys 0600), `bundle.json` last. On any failure the directory is
/// removed again, so a failed write leaves nothing behind.
pub fn write_bundle(dir: &Path, files: &[(PathBuf, u32, Vec<u8>)], manifest: &[u8]) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let created = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::Input {
                    path: dir.to_path_buf(),
                    expected: "a new or empty directory for the bundle".into(),
                    found: "a directory with files in it (bundles are never overwritten)".into(),
                });
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|source| Error::Write {
                    path: dir.to_path_buf(),
                    source,
                })?;
            true
        }
        Err(source) => {
            return Err(Error::Write {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let write_all = || -> Result<()> {
        let all = files
            .iter()
            .map(|(p, m, c)| (p.as_path(), *m, c.as_slice()));
        for (rel, mode, contents) in all.chain([(Path::new("bundle.json"), 0o644, manifest)]) {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                create_private_dirs(parent)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
                .map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
            std::io::Write::write_all(&mut f, contents)
                .and_then(|_| f.sync_all())
                .map_err(|source| Error::Write {
                    path: path.clone(),
                    source,
                })?;
        }
        Ok(())
    };
    write_all().inspect_err(|_| {
        if created {
            let _ = std::fs::remove_dir_all(dir);
        } else if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ =
                    std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
            }
        }
    })
}

/// Replaces `path` atomically: a temp file beside it with `mode`, fsync, rename over the
/// target, fsync the directory. A reader sees the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    let tmp = temp_beside(path);
    write_synced(&tmp, contents, mode)?;
    commit_temp(&tmp, path)
}

/// The temp name `write_atomic` uses for `path`; a crash can leave it behind.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.certs-tmp"))
}

/// Writes a new file (replacing a stale temp) and syncs it.
pub fn write_synced(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_synced_as(path, contents, mode, None)
}

/// [`write_synced`], the new file also given `owner` (uid, gid) before it is synced: a file
/// swapped in keeps the owner and group of the one it replaces. Only what differs is changed, so
/// a process that is not root and already owns the file only sets the group, and a group it
/// cannot give is an error (never a file silently left with our group).
pub fn write_synced_as(
    path: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    if let Some(owner) = owner {
        give_owner(&f, owner).map_err(err)?;
    }
    // The umask may have narrowed the mode asked for (and chown clears set-id bits); set it
    // exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(err)?;
    std::io::Write::write_all(&mut f, contents).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Gives an open file `uid`:`gid`, changing only the ids that differ.
fn give_owner(f: &std::fs::File, (uid, gid): (u32, u32)) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = f.metadata()?;
    let set_uid = (m.uid() != uid).then_some(uid);
    let set_gid = (m.gid() != gid).then_some(gid);
    if set_uid.is_none() && set_gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::fchown(f, set_uid, set_gid).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot give it the owner {uid}:{gid} of the file it replaces (it is {}:{}): {e}",
                m.uid(),
                m.gid()
            ),
        )
    })
}

/// Moves `from` to `to` on the same file system (a rename, so never a copy: a crash leaves the
/// file in one place or the other) and syncs both directories. `to`'s directory is created
/// (0700) if missing.
pub fn move_synced(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    create_private_dirs(dir)?;
    std::fs::rename(from, to).map_err(|e| Error::Write {
        path: to.to_path_buf(),
        source: std::io::Error::new(
            e.kind(),
            format!("cannot move `{}` here: {e}", from.display()),
        ),
    })?;
    sync_dir(dir)?;
    sync_dir(from.parent().unwrap_or(Path::new(".")))
}

/// Renames a synced temp file over `path` and syncs the directory.
pub fn commit_temp(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(tmp, path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|source| Error::Write {
            path: d.to_path_buf(),
            source,
        })
}

/// Creates `dir` and its missing parents, each 0700 (bundles and backups hold private keys).
pub fn create_private_dirs(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// Creates a directory that must not exist yet (backups are never overwritten).
pub fn create_new_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = dir.parent() {
        create_private_dirs(parent)?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })
}

/// A file written as its bytes arrive, for what is too large to hold in memory (an etcd
/// snapshot): [`StreamedFile::create`] opens a new temp file beside the target ([`temp_beside`],
/// with its mode), [`StreamedFile::write`] appends, [`StreamedFile::commit`] syncs it and renames
/// it over the target (then syncs the directory). Dropped uncommitted (an error, a refused
/// stream), the temp file is removed: a reader never sees a partial file at the target.
#[derive(Debug)]
pub struct StreamedFile {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    written: u64,
}

impl StreamedFile {
    /// Opens the temp file beside `path` (a stale one from a crash is replaced), `mode` exactly
    /// (the umask does not narrow it).
    pub fn create(path: &Path, mode: u32) -> Result<StreamedFile> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let tmp = temp_beside(path);
        let err = |source| Error::Write {
            path: tmp.clone(),
            source,
        };
        let _ = std::fs::remove_file(&tmp);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(err)?;
        // From here on, a failure removes the temp file (Drop).
        let mut out = StreamedFile {
            path: path.to_path_buf(),
            tmp: tmp.clone(),
            file: None,
            written: 0,
        };
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(err)?;
        out.file = Some(std::io::BufWriter::with_capacity(256 * 1024, f));
        Ok(out)
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(self.closed());
        };
        std::io::Write::write_all(f, bytes).map_err(|source| Error::Write {
            path: self.tmp.clone(),
            source,
        })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and syncs the temp file, checks that it holds every byte written, renames it over
    /// the target and syncs the directory. Returns the target's size.
    pub fn commit(mut self) -> Result<u64> {
        let err = |path: &Path, source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        let Some(f) = self.file.take() else {
            return Err(self.closed());
        };
        let f = f.into_inner().map_err(|e| err(&self.tmp, e.into_error()))?;
        f.sync_all().map_err(|e| err(&self.tmp, e))?;
        let len = f.metadata().map_err(|e| err(&self.tmp, e))?.len();
        drop(f);
        if len != self.written {
            return Err(err(
                &self.tmp,
                std::io::Error::other(format!(
                    "holds {len} bytes after the sync, {} were written",
                    self.written
                )),
            ));
        }
        commit_temp(&self.tmp, &self.path)?;
        // Committed: nothing for Drop to remove.
        self.tmp = PathBuf::new();
        Ok(len)
    }

    fn closed(&self) -> Error {
        Error::Write {
            path: self.tmp.clone(),
            source: std::io::Error::other("already closed"),
        }
    }
}

impl Drop for StreamedFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            drop(self.file.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Adds files to the bundle in `dir` and replaces its `bundle.json` with `manifest`: each new
/// file is created (never over an existing one) with its mode and synced, then `bundle.json` is
/// replaced atomically (a reader sees the old manifest or the new one). On any failure the files
/// written are removed again and `bundle.json` is the old one.
pub fn add_to_bundle(dir: &Path, files: &[(PathBuf, u32, Vec<u8>)], manifest: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut written: Vec<PathBuf> = Vec::new();
    let mut write_all = || -> Result<()> {
        for (rel, mode, contents) in files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                create_private_dirs(parent)?;
            }
            let err = |source| Error::Write {
                path: path.clone(),
                source,
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(*mode)
                .open(&path)
                .map_err(err)?;
            written.push(path.clone());
            std::io::Write::write_all(&mut f, contents)
                .and_then(|_| f.sync_all())
                .map_err(err)?;
        }
        let json = dir.join("bundle.json");
        write_atomic(&json, manifest, mode(&json).unwrap_or(0o644))
    };
    write_all().inspect_err(|_| {
        for p in &written {
            let _ = std::fs::remove_file(p);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_file_appears_whole_or_not_at_all() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap.db");
        let tmp = temp_beside(&path);
        // A stale temp file of a crash is replaced.
        std::fs::write(&tmp, b"stale").unwrap();
        let mut f = StreamedFile::create(&path, 0o600).unwrap();
        let piece: Vec<u8> = (0..100_000u32).map(|i| (i % 256) as u8).collect();
        for _ in 0..40 {
            f.write(&piece).unwrap();
        }
        assert_eq!(f.written(), 4_000_000);
        assert!(is_absent(&path), "nothing at the target before the commit");
        assert_eq!(
            std::fs::metadata(&tmp).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        assert_eq!(f.commit().unwrap(), 4_000_000);
        assert!(is_absent(&tmp));
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len(), 4_000_000);
        assert!(back.chunks(100_000).all(|c| c == piece.as_slice()));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        // Dropped before the commit (a failed stream): no target, no temp file.
        let other = dir.path().join("other.db");
        let mut f = StreamedFile::create(&other, 0o600).unwrap();
        f.write(b"part of it").unwrap();
        drop(f);
        assert!(is_absent(&other) && is_absent(&temp_beside(&other)));
        // A directory that is not there.
        assert!(StreamedFile::create(&dir.path().join("no/such.db"), 0o600).is_err());
    }

    #[test]
    fn a_new_file_takes_the_owner_and_group_it_is_given() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apiserver.crt");
        let me = owner(dir.path()).unwrap();
        // Asking for what the file already has needs no privilege.
        write_synced_as(&path, b"x", 0o640, Some(me)).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
            (me.0, me.1, 0o640)
        );
        if me.0 != 0 {
            // Not root: another group than ours is refused, never silently dropped.
            assert!(write_synced_as(&path, b"x", 0o640, Some((me.0, 1234))).is_err());
            return;
        }
        write_synced_as(&path, b"y", 0o640, Some((1235, 1234))).unwrap();
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
            (1235, 1234, 0o640)
        );
    }

    #[test]
    fn a_move_stays_on_the_file_system_and_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("manifests/etcd.yaml");
        let to = dir.path().join("manifests.certs-parked/etcd.yaml");
        std::fs::create_dir(from.parent().unwrap()).unwrap();
        std::fs::write(&from, "kind: Pod\n").unwrap();
        move_synced(&from, &to).unwrap();
        assert!(!from.exists());
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "kind: Pod\n");
        let err = move_synced(&from, &to).unwrap_err().to_string();
        assert!(err.contains("etcd.yaml"), "{err}");
    }

    #[test]
    fn atomic_write_keeps_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("apiserver.key");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!temp_beside(&path).exists());
    }
}
