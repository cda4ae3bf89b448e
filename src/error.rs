//! Typed errors for the whole crate. Their exit codes are decided in one place:
//! `cli::outcome::exit_code` (ARCHITECTURE.md).
//!
//! Soft problems met while scanning (a bad file among good ones) are not errors: they are
//! [`crate::pki::Finding`]s. An `Error` stops the command.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),

    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("nothing to inspect: none of the standard locations exists ({})", .tried.join(", "))]
    NoStandardLocation { tried: Vec<String> },

    #[error("`{}`: expected {expected}, found {found}", path.display())]
    Input {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Several problems found before anything was changed; printed one per line.
    #[error("{what}:\n{}", .problems.join("\n"))]
    Refused { what: String, problems: Vec<String> },

    #[error(transparent)]
    Probe(#[from] crate::sys::tls::ProbeError),

    #[error(transparent)]
    Endpoint(#[from] crate::endpoint::InvalidTarget),

    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),

    #[error(transparent)]
    Pki(#[from] crate::pki::Error),

    #[error(transparent)]
    Spec(#[from] crate::spec::Error),

    #[error(transparent)]
    Edit(#[from] crate::edit::Error),

    #[error(transparent)]
    Issue(#[from] crate::issue::Error),

    #[error(transparent)]
    Duration(#[from] crate::duration::Error),

    #[error(transparent)]
    Change(#[from] crate::change::Error),

    #[error(transparent)]
    Cluster(#[from] crate::cluster::Error),

    #[error(transparent)]
    Preflight(#[from] crate::preflight::Error),

    #[error(transparent)]
    Rollout(crate::rollout::Error),
}

/// `sys` reports in its own terms; they keep the variants (and so the text) they always had.
impl From<crate::sys::Error> for Error {
    fn from(e: crate::sys::Error) -> Error {
        use crate::sys::Error as Sys;
        match e {
            Sys::Read { path, source } => Error::Read { path, source },
            Sys::Write { path, source } => Error::Write { path, source },
            Sys::Input {
                path,
                expected,
                found,
            } => Error::Input {
                path,
                expected,
                found,
            },
            other => Error::Usage(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
