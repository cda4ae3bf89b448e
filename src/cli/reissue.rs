//! `certs reissue`: an adapter over [`crate::issue::reissue::reissue`] and the bundle writer.

use std::io::Write;

use super::config::ReissueConfig;
use crate::error::{exit, Error, Result};
use crate::issue::reissue::{reissue, ReissueRequest};

pub fn run(c: &ReissueConfig) -> Result<u8> {
    let req = ReissueRequest {
        targets: &c.certs,
        edit: &c.edit,
        ca: c.ca.as_ref().map(|(a, b)| (a.as_path(), b.as_path())),
        new_key: c.new_key,
        key_algo: c.key_algo.clone(),
        validity: c.validity,
        now: c.now,
    };
    let r = reissue(&req)?;
    let mut out = std::io::stdout().lock();
    let w = |e| Error::Output(e);
    for d in &r.done {
        let who = match &d.target.user {
            Some(user) => format!("{} (user {user})", d.target.path.display()),
            None => d.target.path.display().to_string(),
        };
        writeln!(
            out,
            "{who}: {} signed by {}",
            d.target.info.subject, d.ca_location
        )
        .map_err(w)?;
        for s in &d.outcome.added {
            writeln!(out, "  + {s}").map_err(w)?;
        }
        for s in &d.outcome.removed {
            writeln!(out, "  - {s}").map_err(w)?;
        }
        for s in &d.outcome.already_present {
            writeln!(out, "  = {s} (already present)").map_err(w)?;
        }
        let kept = d.outcome.sans.len() - d.outcome.added.len();
        let key = if d.issued.new_key.is_some() {
            "new key"
        } else {
            "key kept"
        };
        writeln!(
            out,
            "  {kept} SANs kept; serial {} -> {}; {key}; valid until {}",
            d.target.info.serial,
            d.issued.info.serial,
            crate::duration::rfc3339(d.issued.info.not_after)
        )
        .map_err(w)?;
        for warning in &d.issued.warnings {
            writeln!(out, "  warning: {warning}").map_err(w)?;
        }
    }
    if c.dry_run {
        writeln!(
            out,
            "dry run: would write {} files and bundle.json to {}",
            r.files.len(),
            c.out.display()
        )
        .map_err(w)?;
        for f in &r.files {
            writeln!(
                out,
                "  {} (replaces {})",
                f.bundle_path.display(),
                f.target.display()
            )
            .map_err(w)?;
        }
        return Ok(exit::OK);
    }
    let manifest =
        serde_json::to_vec_pretty(&r.manifest).map_err(|e| Error::Usage(e.to_string()))?;
    let files: Vec<_> = r
        .files
        .iter()
        .map(|f| {
            let mode = u32::from_str_radix(&f.mode, 8).unwrap_or(0o600);
            (f.bundle_path.clone(), mode, f.contents.clone())
        })
        .collect();
    crate::sys::fs::write_bundle(&c.out, &files, &manifest)?;
    writeln!(
        out,
        "bundle written to {} ({} files, bundle.json); originals untouched",
        c.out.display(),
        files.len()
    )
    .map_err(w)?;
    Ok(exit::OK)
}
