//! Reading single files and what is known about a path (kind, mode, owner, where it lies under
//! a root).

use std::path::{Path, PathBuf};

use super::*;
use crate::sys::error::{Error, Result};

/// A file's bytes, or `None` when it cannot be read (for hashing and comparisons).
pub fn read_opt(path: &Path) -> Option<Vec<u8>> {
    overlay::get(path).or_else(|| std::fs::read(path).ok())
}

/// A file's bytes when it is a regular file (after symlinks) of at most [`MAX_FILE_SIZE`], else
/// `None`: a FIFO or device is never opened (so never waited on), a huge file never read.
pub fn read_opt_bounded(path: &Path) -> Option<Vec<u8>> {
    match read_entry(path) {
        Walked::File { bytes, .. } => Some(bytes),
        Walked::Problem { .. } => None,
    }
}

/// What is at a path (after symlinks), for a rollout target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Absent,
    File,
    /// A regular file over [`MAX_FILE_SIZE`] bytes (its size).
    TooLarge(u64),
    /// Not a regular file: what it is (`a directory`, `a FIFO`, …).
    Other(&'static str),
}

pub fn file_kind(path: &Path) -> Kind {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && is_absent(path) => Kind::Absent,
        Err(_) => Kind::Other("something that cannot be looked at (a broken symlink?)"),
        Ok(m) if m.is_file() && m.len() > MAX_FILE_SIZE => Kind::TooLarge(m.len()),
        Ok(m) if m.is_file() => Kind::File,
        Ok(m) => Kind::Other(match m.file_type() {
            t if t.is_dir() => "a directory",
            t if t.is_fifo() => "a FIFO",
            t if t.is_char_device() || t.is_block_device() => "a device",
            t if t.is_socket() => "a socket",
            _ => "something that is not a regular file",
        }),
    }
}

/// Whether `path` or one of its directories is a symlink.
pub fn goes_through_symlink(path: &Path) -> bool {
    path.ancestors()
        .any(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()))
}

/// The group- or other-writable permission bits of `path` (after symlinks), when it has any: a
/// bundle or state directory others can write is not trusted. `None` when it has none or
/// cannot be looked at.
pub fn writable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o022 != 0).then_some(mode)
}

/// `root` with every symlink resolved (as [`resolve_in_root`]'s results start), or as given
/// when it cannot be resolved.
pub fn canonical_root(root: &Path) -> PathBuf {
    std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

/// `path` as the node mounted at `root` sees it, every symlink resolved inside `root`: an
/// absolute link target is taken under `root` (as the node would read it), or as written when
/// it already lies under `root`; a relative one from the link's directory. A `..` that would
/// climb above `root`, a loop (more than 40 links), a path that is not absolute or not under
/// `root`: an error that says which. Components that do not exist (a file the bundle adds) are
/// kept as written. The result lies under the canonical `root`.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf> {
    use std::collections::VecDeque;
    use std::path::Component;
    let canon_root = std::fs::canonicalize(root).map_err(|e| {
        Error::Resolve(format!(
            "the root `{}` cannot be resolved: {e}",
            root.display()
        ))
    })?;
    if !path.is_absolute() {
        return Err(Error::Resolve(format!(
            "expected an absolute target path, found `{}`",
            path.display()
        )));
    }
    let abs_root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let rel = path
        .strip_prefix(&canon_root)
        .or_else(|_| path.strip_prefix(&abs_root))
        .map_err(|_| {
            Error::Resolve(format!(
                "`{}` is outside the root `{}` (--root)",
                path.display(),
                root.display()
            ))
        })?;
    let escape = || {
        Error::Resolve(format!(
            "`{}` leads outside the root `{}` (a `..` or a symlink climbs above it)",
            path.display(),
            root.display()
        ))
    };
    let mut todo: VecDeque<std::ffi::OsString> = VecDeque::new();
    let push_parts = |todo: &mut VecDeque<std::ffi::OsString>, p: &Path, front: bool| {
        let parts: Vec<std::ffi::OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        if front {
            for part in parts.into_iter().rev() {
                todo.push_front(part);
            }
        } else {
            todo.extend(parts);
        }
    };
    push_parts(&mut todo, rel, false);
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            done.pop().ok_or_else(escape)?;
            continue;
        }
        let here: PathBuf = canon_root
            .join(done.iter().collect::<PathBuf>())
            .join(&part);
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(Error::Resolve(format!(
                        "`{}`: more than 40 symlinks (a loop?)",
                        path.display()
                    )));
                }
                let to = std::fs::read_link(&here).map_err(|e| {
                    Error::Resolve(format!("cannot read the symlink `{}`: {e}", here.display()))
                })?;
                if to.is_absolute() {
                    done.clear();
                    let inside = to
                        .strip_prefix(&canon_root)
                        .or_else(|_| to.strip_prefix(&abs_root))
                        .unwrap_or(&to);
                    push_parts(&mut todo, inside, true);
                } else {
                    push_parts(&mut todo, &to, true);
                }
            }
            _ => done.push(part),
        }
    }
    Ok(canon_root.join(done.iter().collect::<PathBuf>()))
}

/// The entries of a directory (full paths), or an error when it cannot be listed.
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect()
}

/// Whether something is at `path` after symlinks (a dangling symlink is nothing): what
/// `Path::exists` says, kept here with every other look at the file system.
pub fn exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

/// Whether a regular file is at `path` (after symlinks).
pub fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Whether a directory is at `path` (after symlinks).
pub fn is_dir(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

/// Whether nothing at all is at `path` (a dangling symlink counts as something).
pub fn is_absent(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    match read_entry(path) {
        Walked::File { bytes, .. } => Ok(bytes),
        Walked::Problem { message, .. } => Err(Error::Input {
            path: path.to_path_buf(),
            expected: "a readable regular file".into(),
            found: message,
        }),
    }
}

/// Reads a text file the user named: a file that is not UTF-8 is an error saying `expected`.
pub fn read_text(path: &Path, expected: &str) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|_| Error::Input {
        path: path.to_path_buf(),
        expected: expected.into(),
        found: "binary data".into(),
    })
}

/// The permission bits of a file, to give its replacement the same.
pub fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

/// Owner and group of a file: recorded in backups, given back to the files swapped in and
/// restored.
pub fn owner(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

/// `path` as seen from a node whose file system is mounted at `root` (`/` for the live node).
pub fn under_root(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) if root != Path::new("/") => root.join(rel),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rerooting() {
        assert_eq!(
            under_root(Path::new("/"), Path::new("/etc/x")),
            Path::new("/etc/x")
        );
        assert_eq!(
            under_root(Path::new("/mnt"), Path::new("/etc/x")),
            Path::new("/mnt/etc/x")
        );
        assert_eq!(
            under_root(Path::new("/mnt"), Path::new("rel")),
            Path::new("rel")
        );
    }
}
