//! `certs issue`, resolved: the SAN edit, key algorithm and validity parsed, the clock read once.

use std::path::PathBuf;

use super::{now, parse_duration, parse_key_algo};
use crate::cli::args::{IssueArgs, ResultOutput};
use crate::error::{Error, Result};
use crate::pki::key::KeyAlgo;
use crate::spec::SanEdit;

/// `certs issue`, resolved.
#[derive(Debug)]
pub struct IssueConfig {
    /// The certificate to make the new one like.
    pub like: PathBuf,
    pub cn: String,
    pub edit: SanEdit,
    /// The new certificate's file name, beside the template.
    pub name: Option<String>,
    /// The CA certificate and key, when given.
    pub ca: Option<(PathBuf, PathBuf)>,
    pub key_algo: Option<KeyAlgo>,
    /// Seconds.
    pub validity: Option<i64>,
    pub now: i64,
    pub out: PathBuf,
    pub output: ResultOutput,
}

pub fn issue(a: IssueArgs) -> Result<IssueConfig> {
    let edit = SanEdit::parse(&a.sans.add, &a.sans.drop).map_err(Error::from)?;
    let now = now(a.now.as_deref())?;
    let key_algo = a.key_algo.as_deref().map(parse_key_algo).transpose()?;
    let validity = a
        .validity
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| Error::Usage(format!("--validity: {e}")))?
        .map(|d| d.as_secs() as i64);
    Ok(IssueConfig {
        like: a.like,
        cn: a.cn,
        edit,
        name: a.name,
        ca: a.ca.zip(a.ca_key),
        key_algo,
        validity,
        now,
        out: a.out,
        output: a.output,
    })
}
