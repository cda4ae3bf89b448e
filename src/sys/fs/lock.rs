//! The lock file a mutating run holds, and who holds it.

use std::path::Path;

use crate::sys::error::{Error, Result};

/// An advisory exclusive lock (`flock`) on `path`, taken without waiting and held until the
/// returned guard drops (or the process ends: the kernel releases it, so a killed process
/// leaves no stale lock). The file holds the pid of the holder, for the message another process
/// gets; it is never deleted (deleting a lock file races with the next process opening it).
pub fn lock(path: &Path) -> Result<Lock> {
    use std::io::{Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            let holder = match holder.trim() {
                "" => None,
                p => Some(p.to_string()),
            };
            return Err(Error::Locked {
                dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                lock: path.to_path_buf(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(Error::Write {
                path: path.to_path_buf(),
                source,
            })
        }
    }
    // Ours now: say who holds it (best effort, the lock is what counts).
    let _ = file
        .set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| write!(file, "{}", std::process::id()));
    Ok(Lock { _file: file })
}

/// Whether another process holds the lock [`lock`] takes on `path` (a rollout in progress), with
/// the pid the file records. Looked up in /proc/locks first, which takes no lock; else (or when
/// it does not list the file) a shared lock is tried and released at once. `None`: nobody
/// holds it, or there is no lock file.
pub fn lock_holder(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let pid = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let dev = m.dev();
    let (major, minor) = (
        ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
        (dev & 0xff) | ((dev >> 12) & !0xff),
    );
    let id = format!("{major:02x}:{minor:02x}:{}", m.ino());
    let listed = std::fs::read_to_string("/proc/locks").is_ok_and(|locks| {
        locks.lines().any(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.get(1) == Some(&"FLOCK") && w.contains(&id.as_str())
        })
    });
    if listed {
        return Some(pid());
    }
    let file = std::fs::File::open(path).ok()?;
    match file.try_lock_shared() {
        Err(std::fs::TryLockError::WouldBlock) => Some(pid()),
        _ => None,
    }
}

/// Held while a rollout runs; the lock goes with the file descriptor.
#[derive(Debug)]
pub struct Lock {
    _file: std::fs::File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_and_a_dead_holders_file_is_no_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = lock(&path).unwrap();
        // Another open file description is another holder, even in this process.
        let err = lock(&path).unwrap_err().to_string();
        assert!(err.contains(&std::process::id().to_string()), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        drop(held);
        // The file stays; it is free again. Other tests of this process spawn programs: a child
        // holds a copy of every descriptor between its fork and its exec (close-on-exec closes
        // them only then), and with it our lock, for that moment. So "free again" is allowed
        // that moment to come true; a lock never released fails after two seconds.
        let relock = || {
            for _ in 0..200 {
                if let Ok(l) = lock(&path) {
                    return l;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            lock(&path).unwrap()
        };
        assert!(path.exists());
        let again = relock();
        drop(again);
        // A file left by a process that is gone is no lock at all.
        std::fs::write(&path, "999999999").unwrap();
        let taken = relock();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(taken);
    }

    #[test]
    fn a_held_lock_says_who_holds_it_in_the_words_it_always_had() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let _held = lock(&path).unwrap();
        let err = lock(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "another certs process (pid {}) holds the lock on the state directory `{}` (`{}`); wait for it to end",
                std::process::id(),
                dir.path().display(),
                path.display()
            )
        );
        // Into the crate's error it is the same line.
        let top: crate::error::Error = lock(&path).unwrap_err().into();
        assert_eq!(top.to_string(), err);
    }
}
