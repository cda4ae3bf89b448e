//! What can go wrong touching the OS. `sys` depends on nothing above it: its errors are its own,
//! and `crate::error::Error` takes them in at the boundary (`From<sys::Error>`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file or directory that is not what the operation needs.
    #[error("`{}`: expected {expected}, found {found}", path.display())]
    Input {
        path: PathBuf,
        expected: String,
        found: String,
    },

    /// Another process holds the lock on a state directory.
    #[error(
        "another certs process{} holds the lock on the state directory `{}` (`{}`); wait for it to end",
        .holder.as_ref().map(|p| format!(" (pid {p})")).unwrap_or_default(),
        .dir.display(),
        .lock.display()
    )]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        holder: Option<String>,
    },

    /// A path that cannot be followed inside a root (what and where is in the text).
    #[error("{0}")]
    Resolve(String),

    /// A directory that cannot take files.
    #[error("{0}")]
    NotWritable(String),

    /// `df` that did not say how much room there is.
    #[error("{0}")]
    Df(String),

    /// A plain-HTTP request that failed (the URL and the step are in the text).
    #[error("{0}")]
    Http(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
