//! `certs reissue`, resolved: the SAN edit parsed, the default bundle directory named after the
//! one clock read.

use std::path::PathBuf;

use super::{now, parse_duration, parse_key_algo};
use crate::error::{Error, Result};

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
    pub output: crate::cli::args::ResultOutput,
}

pub fn reissue(a: crate::cli::args::ReissueArgs) -> Result<ReissueConfig> {
    if let Some(dir) = a.certs.iter().find(|p| crate::sys::fs::is_dir(p)) {
        return Err(Error::Usage(format!(
            "`{}` is a directory: reissue takes the certificate files and kubeconfigs to edit, each named (one SAN edit for a whole directory would reach client and etcd certificates too); to renew every leaf under it as it is, run `certs renew {} --out DIR`",
            dir.display(),
            dir.display()
        )));
    }
    let edit = san_edit(&a.sans.add, &a.sans.drop)?;
    let now = now(a.now.as_deref())?;
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
            let san = crate::spec::San::parse(text).map_err(Error::from)?;
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
