//! `certs renew`, resolved: the window and validity parsed, the clock read once.

use std::path::PathBuf;

use super::{now, parse_duration};
use crate::error::{Error, Result};

/// `certs renew`, resolved.
#[derive(Debug)]
pub struct RenewConfig {
    pub paths: Vec<PathBuf>,
    pub root: PathBuf,
    /// Seconds.
    pub within: i64,
    pub all: bool,
    pub ca: Option<(PathBuf, PathBuf)>,
    /// `None` only with `--dry-run`.
    pub out: Option<PathBuf>,
    pub validity: Option<i64>,
    pub dry_run: bool,
    pub now: i64,
    pub output: crate::cli::args::ResultOutput,
}

pub fn renew(a: crate::cli::args::RenewArgs) -> Result<RenewConfig> {
    let within = parse_duration(&a.within)
        .map_err(|e| Error::Usage(format!("--within: {e}")))?
        .as_secs() as i64;
    Ok(RenewConfig {
        paths: a.paths,
        root: a.root,
        within,
        all: a.all,
        ca: a.ca.zip(a.ca_key),
        out: a.out,
        validity: a
            .validity
            .as_deref()
            .map(parse_duration)
            .transpose()?
            .map(|d| d.as_secs() as i64),
        dry_run: a.dry_run,
        now: now(a.now.as_deref())?,
        output: a.output,
    })
}
