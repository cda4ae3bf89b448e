//! Reading the file system: walking scan roots and reading files with a size bound.
//!
//! A walk never aborts on one bad entry: symlink loops, broken links, unreadable files, special
//! files and oversized files come back as [`Walked::Problem`]. Only a root that cannot be read
//! at all is an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A PKI file is a few KiB; a kubeconfig with embedded data rarely passes 20 KiB. Anything over
/// this is not read, so a stray disk image in /etc/kubernetes cannot stall a scan.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

#[derive(Debug)]
pub enum Walked {
    File {
        path: PathBuf,
        bytes: Vec<u8>,
    },
    Problem {
        path: PathBuf,
        code: &'static str,
        message: String,
    },
}

/// Walks each root (a file or a directory, recursively, following symlinks) in file-name order.
pub fn walk(roots: &[PathBuf]) -> Result<Vec<Walked>> {
    listing(roots)
        .map(|listed| match listed? {
            Listed::File(path) => Ok(read_entry(&path)),
            Listed::Regular(path) => Ok(read_regular(&path)),
            Listed::Problem(problem) => Ok(problem),
        })
        .collect()
}

/// One entry of a walk before anything is read: a path for [`read_entry`], or what went wrong
/// reaching it (always a [`Walked::Problem`]).
#[derive(Debug)]
pub enum Listed {
    /// Anything but a directory, for [`read_entry`] (which looks before it opens).
    File(PathBuf),
    /// What the walk saw as a regular file (after symlinks), for [`read_regular`].
    Regular(PathBuf),
    Problem(Walked),
}

/// What [`walk`] visits, in the same order, as it goes and without reading the files: the
/// caller reads them (with [`read_entry`]) when and where it wants, e.g. on other threads while
/// the walk goes on. A root that cannot be read at all is an error, and the last item.
pub fn listing(roots: &[PathBuf]) -> Listing<'_> {
    Listing {
        roots: roots.iter(),
        current: None,
        failed: false,
        links: 0,
    }
}

/// Symlinked directories one walk follows at most: a node has a handful; a tree of links
/// that fan out (two per level, eighteen levels: 262,144 directories) is cut here, with a
/// finding, instead of being walked for minutes.
pub const MAX_FOLLOWED_LINKS: usize = 1024;

/// The iterator [`listing`] returns.
pub struct Listing<'a> {
    roots: std::slice::Iter<'a, PathBuf>,
    current: Option<(&'a PathBuf, walkdir::IntoIter)>,
    failed: bool,
    /// Symlinked directories followed so far.
    links: usize,
}

impl Iterator for Listing<'_> {
    type Item = Result<Listed>;

    fn next(&mut self) -> Option<Result<Listed>> {
        while !self.failed {
            if let Some((root, entries)) = &mut self.current {
                match entries.next() {
                    None => self.current = None,
                    Some(Ok(e)) if e.file_type().is_dir() => {
                        if e.path_is_symlink() {
                            self.links += 1;
                            if self.links > MAX_FOLLOWED_LINKS {
                                entries.skip_current_dir();
                                if self.links == MAX_FOLLOWED_LINKS + 1 {
                                    return Some(Ok(Listed::Problem(Walked::Problem {
                                        path: e.into_path(),
                                        code: "symlink-limit",
                                        message: format!(
                                            "more than {MAX_FOLLOWED_LINKS} symlinked directories under `{}`; this one and any further ones not followed",
                                            root.display()
                                        ),
                                    })));
                                }
                            }
                        }
                    }
                    Some(Ok(e)) if e.file_type().is_file() => {
                        return Some(Ok(Listed::Regular(e.into_path())))
                    }
                    Some(Ok(e)) => return Some(Ok(Listed::File(e.into_path()))),
                    Some(Err(e)) if e.depth() == 0 => {
                        self.failed = true;
                        return Some(Err(Error::Read {
                            path: root.to_path_buf(),
                            source: e.into_io_error().unwrap_or_else(|| {
                                std::io::Error::other("cannot walk the directory")
                            }),
                        }));
                    }
                    Some(Err(e)) => return Some(Ok(Listed::Problem(walk_problem(e)))),
                }
                continue;
            }
            let root = self.roots.next()?;
            match std::fs::metadata(root) {
                Err(source) => {
                    self.failed = true;
                    return Some(Err(Error::Read {
                        path: root.clone(),
                        source,
                    }));
                }
                Ok(meta) if !meta.is_dir() => return Some(Ok(Listed::File(root.clone()))),
                Ok(_) => {
                    let entries = walkdir::WalkDir::new(root)
                        .follow_links(true)
                        .sort_by_file_name()
                        .into_iter();
                    self.current = Some((root, entries));
                }
            }
        }
        None
    }
}

/// Too many levels of symbolic links (ELOOP, 40 on Linux; `ErrorKind::FilesystemLoop` is not
/// stable yet): a link that leads back to itself.
fn is_loop(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(40)
}

fn walk_problem(e: walkdir::Error) -> Walked {
    let path = e.path().map(Path::to_path_buf).unwrap_or_default();
    if let Some(ancestor) = e.loop_ancestor() {
        return Walked::Problem {
            code: "symlink-loop",
            message: format!(
                "symlink loop back to `{}`; not followed",
                ancestor.display()
            ),
            path,
        };
    }
    if path.is_symlink() && std::fs::metadata(&path).is_err_and(|e| is_loop(&e)) {
        return Walked::Problem {
            code: "symlink-loop",
            message: "symlink loop: it resolves to itself; not followed".into(),
            path,
        };
    }
    let broken_link = path.is_symlink() && std::fs::metadata(&path).is_err();
    Walked::Problem {
        code: "unreadable",
        message: if broken_link {
            "broken symlink: its target does not exist".to_string()
        } else {
            format!("cannot read: {e}")
        },
        path,
    }
}

/// Reads one file, or says why not. Only regular files are opened: a FIFO would block forever.
pub fn read_entry(path: &Path) -> Walked {
    if let Some(bytes) = overlay::get(path) {
        return Walked::File {
            path: path.to_path_buf(),
            bytes,
        };
    }
    let problem = |code, message: String| Walked::Problem {
        path: path.to_path_buf(),
        code,
        message,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if path.is_symlink() && is_loop(&e) => {
            return problem(
                "symlink-loop",
                "symlink loop: it resolves to itself; not followed".into(),
            );
        }
        Err(e) if path.is_symlink() => {
            return problem("unreadable", format!("broken symlink ({e})"));
        }
        Err(e) => return problem("unreadable", format!("cannot read: {e}")),
    };
    if let Some(refused) = unreadable_kind(path, &meta) {
        return refused;
    }
    walked(path, read_bounded(path, meta.len()))
}

/// Why a file of this kind and size is not read (a FIFO, device or socket; more than
/// [`MAX_FILE_SIZE`]), or `None` for a regular file of a plausible size.
fn unreadable_kind(path: &Path, meta: &std::fs::Metadata) -> Option<Walked> {
    let (code, message) = if !meta.is_file() {
        (
            "not-a-file",
            "not a regular file (device, FIFO or socket); skipped".to_string(),
        )
    } else if meta.len() > MAX_FILE_SIZE {
        (
            "too-large",
            format!(
                "{} bytes, more than the {} a PKI file can plausibly be; skipped",
                meta.len(),
                MAX_FILE_SIZE
            ),
        )
    } else {
        return None;
    };
    Some(Walked::Problem {
        path: path.to_path_buf(),
        code,
        message,
    })
}

/// The bytes read, or the problem reading them.
fn walked(path: &Path, read: std::io::Result<Vec<u8>>) -> Walked {
    match read {
        Ok(bytes) => Walked::File {
            path: path.to_path_buf(),
            bytes,
        },
        Err(e) => Walked::Problem {
            path: path.to_path_buf(),
            code: "unreadable",
            message: format!("cannot read: {e}"),
        },
    }
}

/// Reads a file the walk has just seen as a regular file, as [`read_entry`] would, without
/// looking at the path again first: it is opened non-blocking (a FIFO swapped in since the
/// walk cannot block it) and checked on the open descriptor. One path lookup a file instead
/// of two, on the hot path of a fleet inspect.
pub fn read_regular(path: &Path) -> Walked {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(bytes) = overlay::get(path) {
        return Walked::File {
            path: path.to_path_buf(),
            bytes,
        };
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        // Gone or changed since the walk: the careful reader says what it is now.
        Err(_) => return read_entry(path),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return walked(path, Err(e)),
    };
    if let Some(refused) = unreadable_kind(path, &meta) {
        return refused;
    }
    walked(path, read_open(file, meta.len()))
}

fn read_bounded(path: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    // What was opened (the path may have changed since it was looked at) must be a regular file.
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    read_open(file, size)
}

/// The bytes of an open regular file of about `size` bytes, at most [`MAX_FILE_SIZE`].
fn read_open(file: std::fs::File, size: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(size as usize + 1);
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(std::io::Error::other(
            "file grew past the size limit while read",
        ));
    }
    Ok(bytes)
}

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

/// A file's bytes, or `None` when it cannot be read (for hashing and comparisons).
pub fn read_opt(path: &Path) -> Option<Vec<u8>> {
    overlay::get(path).or_else(|| std::fs::read(path).ok())
}

/// The node as it will be after a bundle: while [`overlay::with`] runs, every read through
/// this module (and [`crate::sys::node`]) of a file the overlay holds returns the overlay's
/// bytes instead of the disk's. Nothing is written. `certs change` evaluates its preflight
/// checks against the node after the change this way.
pub mod overlay {
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
pub fn resolve_in_root(root: &Path, path: &Path) -> std::result::Result<PathBuf, String> {
    use std::collections::VecDeque;
    use std::path::Component;
    let canon_root = std::fs::canonicalize(root)
        .map_err(|e| format!("the root `{}` cannot be resolved: {e}", root.display()))?;
    if !path.is_absolute() {
        return Err(format!(
            "expected an absolute target path, found `{}`",
            path.display()
        ));
    }
    let abs_root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let rel = path
        .strip_prefix(&canon_root)
        .or_else(|_| path.strip_prefix(&abs_root))
        .map_err(|_| {
            format!(
                "`{}` is outside the root `{}` (--root)",
                path.display(),
                root.display()
            )
        })?;
    let escape = || {
        format!(
            "`{}` leads outside the root `{}` (a `..` or a symlink climbs above it)",
            path.display(),
            root.display()
        )
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
                    return Err(format!(
                        "`{}`: more than 40 symlinks (a loop?)",
                        path.display()
                    ));
                }
                let to = std::fs::read_link(&here)
                    .map_err(|e| format!("cannot read the symlink `{}`: {e}", here.display()))?;
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

/// Whether nothing at all is at `path` (a dangling symlink counts as something).
pub fn is_absent(path: &Path) -> bool {
    matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Removes a file if it is there; a missing file is not an error.
pub fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
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

/// The permission bits of a file, to give its replacement the same.
pub fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
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

/// Owner and group of a file: recorded in backups, given back to the files swapped in and
/// restored.
pub fn owner(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

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
            let pid = match holder.trim() {
                "" => String::new(),
                p => format!(" (pid {p})"),
            };
            let dir = path.parent().unwrap_or(Path::new("."));
            return Err(Error::Usage(format!(
                "another certs process{pid} holds the lock on the state directory `{}` (`{}`); wait for it to end",
                dir.display(),
                path.display()
            )));
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

/// Proves that `dir` could take files, without creating it: a probe file is created (never over
/// an existing one) and removed in `dir` when it exists, else in its nearest existing ancestor,
/// where `dir` would be created. Returns the directory probed and the bytes free there (from
/// `df`, 0 when unknown).
pub fn probe_writable(dir: &Path) -> std::result::Result<(PathBuf, u64), String> {
    let mut at = dir.to_path_buf();
    loop {
        if at.as_os_str().is_empty() {
            at = PathBuf::from(".");
        }
        match std::fs::metadata(&at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a directory", at.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && at.pop() => {}
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    let probe = at.join(format!(".certs-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("cannot create a file in {}: {e}", at.display()))?;
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
fn df_free(at: &Path) -> std::result::Result<Option<u64>, String> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(at)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok())
        .map(|kib| kib.saturating_mul(1024)))
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

/// `path` as seen from a node whose file system is mounted at `root` (`/` for the live node).
pub fn under_root(root: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix("/") {
        Ok(rel) if root != Path::new("/") => root.join(rel),
        _ => path.to_path_buf(),
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
    fn free_bytes_asks_the_nearest_existing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let here = free_bytes(dir.path()).unwrap();
        assert!(here > 0);
        let deeper = dir.path().join("state/snapshots");
        let there = free_bytes(&deeper).unwrap();
        // Same file system; others may write meanwhile.
        assert!(there.abs_diff(here) < 1 << 30, "{here} {there}");
        assert!(is_absent(&dir.path().join("state")), "nothing created");
    }

    #[test]
    fn loops_fifos_and_big_files_are_problems() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::os::unix::fs::symlink(d, d.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(d.join("nowhere"), d.join("dangling.pem")).unwrap();
        std::fs::write(d.join("big.pem"), vec![b'a'; MAX_FILE_SIZE as usize + 1]).unwrap();
        std::fs::write(d.join("ok.pem"), b"x").unwrap();
        let fifo = d.join("fifo.pem");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let walked = walk(&[d.to_path_buf()]).unwrap();
        let codes: Vec<_> = walked
            .iter()
            .map(|w| match w {
                Walked::File { path, .. } => (path.file_name().unwrap().to_owned(), "file"),
                Walked::Problem { path, code, .. } => (path.file_name().unwrap().to_owned(), *code),
            })
            .collect();
        let expect = |name: &str, code: &str| {
            assert!(
                codes.iter().any(|(n, c)| n == name && *c == code),
                "{name}: {code} not in {codes:?}"
            )
        };
        expect("big.pem", "too-large");
        expect("dangling.pem", "unreadable");
        expect("fifo.pem", "not-a-file");
        expect("loop", "symlink-loop");
        expect("ok.pem", "file");
    }

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
        // The file stays; it is free again.
        assert!(path.exists());
        let again = lock(&path).unwrap();
        drop(again);
        // A file left by a process that is gone is no lock at all.
        std::fs::write(&path, "999999999").unwrap();
        let taken = lock(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(taken);
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

    #[test]
    fn missing_root_is_an_error() {
        let err = walk(&[PathBuf::from("/definitely/not/here")]).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"));
    }

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
