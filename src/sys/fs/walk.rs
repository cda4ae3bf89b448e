//! Walking scan roots: what a walk visits, and each file read with a size bound or the problem
//! that kept it from being read.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::*;
use crate::sys::error::{Error, Result};

#[derive(Debug)]
pub enum Walked {
    File {
        path: PathBuf,
        bytes: Vec<u8>,
    },
    Problem {
        path: PathBuf,
        code: Unread,
        message: String,
    },
}

/// Why a walk did not read a file (`crate::pki::FindingCode` names it in findings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unread {
    /// It could not be opened or read, or is a broken symlink.
    Unreadable,
    /// More than [`MAX_FILE_SIZE`].
    TooLarge,
    /// A device, FIFO or socket.
    NotAFile,
    /// A symlink that leads back to itself or to an ancestor.
    SymlinkLoop,
    /// Past [`MAX_FOLLOWED_LINKS`] symlinked directories.
    SymlinkLimit,
}

impl Unread {
    /// The finding code this problem is reported under.
    pub const fn as_str(self) -> &'static str {
        match self {
            Unread::Unreadable => "unreadable",
            Unread::TooLarge => "too-large",
            Unread::NotAFile => "not-a-file",
            Unread::SymlinkLoop => "symlink-loop",
            Unread::SymlinkLimit => "symlink-limit",
        }
    }
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
                                        code: Unread::SymlinkLimit,
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
            code: Unread::SymlinkLoop,
            message: format!(
                "symlink loop back to `{}`; not followed",
                ancestor.display()
            ),
            path,
        };
    }
    if path.is_symlink() && std::fs::metadata(&path).is_err_and(|e| is_loop(&e)) {
        return Walked::Problem {
            code: Unread::SymlinkLoop,
            message: "symlink loop: it resolves to itself; not followed".into(),
            path,
        };
    }
    let broken_link = path.is_symlink() && std::fs::metadata(&path).is_err();
    Walked::Problem {
        code: Unread::Unreadable,
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
                Unread::SymlinkLoop,
                "symlink loop: it resolves to itself; not followed".into(),
            );
        }
        Err(e) if path.is_symlink() => {
            return problem(Unread::Unreadable, format!("broken symlink ({e})"));
        }
        Err(e) => return problem(Unread::Unreadable, format!("cannot read: {e}")),
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
            Unread::NotAFile,
            "not a regular file (device, FIFO or socket); skipped".to_string(),
        )
    } else if meta.len() > MAX_FILE_SIZE {
        (
            Unread::TooLarge,
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
            code: Unread::Unreadable,
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

#[cfg(test)]
mod tests {
    use super::*;

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
                Walked::Problem { path, code, .. } => {
                    (path.file_name().unwrap().to_owned(), code.as_str())
                }
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
    fn missing_root_is_an_error() {
        let err = walk(&[PathBuf::from("/definitely/not/here")]).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"));
    }
}
