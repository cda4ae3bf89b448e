//! What can stop a stage's pure work: each a value saying what was expected and what was found,
//! converted into [`crate::error::Error`] (exit 2) where the command reports it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CA file or kubeconfig whose certificates cannot be edited as the stage must.
    #[error("`{}`: expected {expected}, found {found}", path.display())]
    Anchor {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// A leaf the new CA cannot sign as it is (validity, SANs, a check of the result).
    #[error("`{at}`: cannot reissue it from the new CA: {why}")]
    Leaf { at: String, why: String },
    /// A new CA that cannot be made as intended (no CN to name it after, a check of the result).
    #[error("{0}")]
    NewCa(String),
    /// Signing or encoding what a stage makes.
    #[error(transparent)]
    Issue(#[from] crate::issue::Error),
    /// An anchor's text that cannot be edited as the stage must, said as the command prints it
    /// (the caller names the file).
    #[error("{0}")]
    Edit(String),
    /// An edit that does not read back as intended: nothing is written.
    #[error("refusing to write `{}`: {why}", path.display())]
    ReadBack { path: PathBuf, why: String },
}

impl From<Error> for crate::error::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Anchor {
                path,
                expected,
                found,
            } => crate::error::Error::Input {
                path,
                expected,
                found,
            },
            other => crate::error::Error::Usage(other.to_string()),
        }
    }
}
