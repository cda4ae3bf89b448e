//! Second stage of argument handling: validate raw values, resolve paths, read the clock once.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{InspectArgs, Output};
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
        now: match a.now {
            Some(t) => parse_time(&t)?,
            None => crate::sys::clock::now(),
        },
        root: a.root,
        output: a.output,
        ca: a.ca,
        insecure: a.insecure,
        timeout: parse_duration(&a.timeout)?,
        textfile: a.textfile,
        endpoints,
    })
}

pub fn parse_duration(text: &str) -> Result<Duration> {
    crate::duration::parse(text).map_err(Error::from)
}

pub fn parse_time(text: &str) -> Result<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            Error::Usage(format!(
                "--now: expected an RFC 3339 time such as 2030-01-01T00:00:00Z, found `{text}` ({e})"
            ))
        })
}

/// `certs reissue`, resolved.
#[derive(Debug)]
pub struct ReissueConfig {
    pub certs: Vec<PathBuf>,
    pub edit: crate::spec::SanEdit,
    pub ca: Option<(PathBuf, PathBuf)>,
    pub out: PathBuf,
    pub new_key: bool,
    pub key_algo: Option<crate::pki::key::KeyAlgo>,
    pub validity: Option<i64>,
    pub dry_run: bool,
    pub now: i64,
    pub output: super::args::ResultOutput,
}

pub fn reissue(a: super::args::ReissueArgs) -> Result<ReissueConfig> {
    if let Some(dir) = a.certs.iter().find(|p| p.is_dir()) {
        return Err(Error::Usage(format!(
            "`{}` is a directory: reissue takes the certificate files and kubeconfigs to edit, each named (one SAN edit for a whole directory would reach client and etcd certificates too); to renew every leaf under it as it is, run `certs renew {} --out DIR`",
            dir.display(),
            dir.display()
        )));
    }
    let edit = san_edit(&a.sans.add, &a.sans.drop)?;
    let now = match a.now {
        Some(t) => parse_time(&t)?,
        None => crate::sys::clock::now(),
    };
    let key_algo = a.key_algo.as_deref().map(parse_key_algo).transpose()?;
    let validity = a
        .validity
        .as_deref()
        .map(parse_duration)
        .transpose()?
        .map(|d| d.as_secs() as i64);
    let out = a.out.unwrap_or_else(|| {
        let stamp = crate::duration::rfc3339(now).replace([':', '-'], "");
        PathBuf::from(format!("certs-bundle-{stamp}"))
    });
    Ok(ReissueConfig {
        certs: a.certs,
        edit,
        ca: a.ca.zip(a.ca_key),
        out,
        new_key: a.new_key,
        key_algo,
        validity,
        dry_run: a.dry_run,
        now,
        output: a.output,
    })
}

/// `--add-san` and `--drop-san`. A SAN both dropped and added stays in both lists: on a
/// certificate that carries it the pair cancels out (reported `unchanged`), on one that does
/// not, the drop is refused like any drop of an absent SAN.
fn san_edit(add: &[String], drop: &[String]) -> Result<crate::spec::SanEdit> {
    let parse = |v: &[String]| -> Result<Vec<crate::spec::San>> {
        let mut out: Vec<crate::spec::San> = Vec::new();
        for text in v {
            let san = crate::spec::San::parse(text)?;
            if !out.contains(&san) {
                out.push(san);
            }
        }
        Ok(out)
    };
    Ok(crate::spec::SanEdit {
        add: parse(add)?,
        drop: parse(drop)?,
    })
}

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
    pub output: super::args::ResultOutput,
}

pub fn renew(a: super::args::RenewArgs) -> Result<RenewConfig> {
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
        now: match a.now {
            Some(t) => parse_time(&t)?,
            None => crate::sys::clock::now(),
        },
        output: a.output,
    })
}

pub(super) fn parse_key_algo(text: &str) -> Result<crate::pki::key::KeyAlgo> {
    use crate::pki::key::KeyAlgo;
    let bad = || {
        Error::Usage(format!("--key-algo: expected rsa:2048, rsa:4096, ecdsa:256, ecdsa:384 or ed25519, found `{text}`"))
    };
    match text.split_once(':') {
        None if text == "ed25519" => Ok(KeyAlgo::ed25519()),
        Some(("rsa", n)) => n.parse().map(KeyAlgo::rsa).map_err(|_| bad()),
        Some(("ecdsa", n)) => n.parse().map(KeyAlgo::ecdsa).map_err(|_| bad()),
        _ => Err(bad()),
    }
}
