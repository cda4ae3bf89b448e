//! `certs inspect`, resolved: files and endpoints apart, the warning window, the clock read once.

use std::path::PathBuf;
use std::time::Duration;

use super::{now, parse_duration};
use crate::cli::args::{InspectArgs, Output};
use crate::endpoint::Target;
use crate::error::{Error, Result};

/// Unless told otherwise, a certificate with less than this left is `expiring`.
pub const DEFAULT_WARN_WITHIN: i64 = 30 * 86400;

#[derive(Debug)]
pub struct InspectConfig {
    pub paths: Vec<PathBuf>,
    pub endpoints: Vec<Target>,
    pub root: PathBuf,
    pub output: Output,
    pub now: i64,
    pub warn_within: i64,
    /// Whether `--warn-within` was given: only then do problems change the exit code.
    pub monitor: bool,
    pub ca: Option<PathBuf>,
    pub insecure: bool,
    pub timeout: Duration,
    /// `--textfile`: write the metrics here (atomically) instead of to stdout.
    pub textfile: Option<PathBuf>,
}

pub fn inspect(a: InspectArgs) -> Result<InspectConfig> {
    let mut paths = Vec::new();
    let mut endpoints = Vec::new();
    for t in a.targets {
        if t.contains("://") {
            endpoints.push(t.parse::<Target>()?);
        } else {
            paths.push(PathBuf::from(t));
        }
    }
    if !endpoints.is_empty() && a.ca.is_none() && !a.insecure {
        return Err(Error::Usage(
            "expected --ca FILE to verify the endpoint against (or --insecure to show its chain untrusted), found neither"
                .into(),
        ));
    }
    let warn = a.warn_within.as_deref().map(parse_duration).transpose()?;
    Ok(InspectConfig {
        // Endpoints alone mean: inspect only the endpoints.
        paths,
        monitor: warn.is_some(),
        warn_within: warn.map_or(DEFAULT_WARN_WITHIN, |d| d.as_secs() as i64),
        now: now(a.now.as_deref())?,
        root: a.root,
        output: a.output,
        ca: a.ca,
        insecure: a.insecure,
        timeout: parse_duration(&a.timeout)?,
        textfile: a.textfile,
        endpoints,
    })
}
