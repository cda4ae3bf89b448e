//! `certs issue --like CERT --cn NAME`: an adapter over [`crate::issue::like::issue_like`] and
//! the bundle writer. Every refusal is one line on stderr, exit 2, nothing written.

use std::io::Write;

use serde::Serialize;

use super::args::{IssueArgs, ResultOutput};
use super::config::{parse_duration, parse_key_algo, parse_time};
use crate::error::{exit, Error, Result};
use crate::issue::bundle::SanDiff;
use crate::issue::like::{issue_like, Like, LikeRequest};
use crate::spec::SanEdit;

pub fn run(a: &IssueArgs) -> Result<u8> {
    let edit = SanEdit::parse(&a.sans.add, &a.sans.drop)?;
    let now = match &a.now {
        Some(t) => parse_time(t)?,
        None => crate::sys::clock::now(),
    };
    let key_algo = a.key_algo.as_deref().map(parse_key_algo).transpose()?;
    let validity = a
        .validity
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| Error::Usage(format!("--validity: {e}")))?
        .map(|d| d.as_secs() as i64);
    let req = LikeRequest {
        template: &a.like,
        cn: &a.cn,
        edit: &edit,
        name: a.name.as_deref(),
        ca: a.ca.as_deref().zip(a.ca_key.as_deref()),
        key_algo,
        validity,
        now,
    };
    let like = issue_like(&req)?;
    super::reissue::write_bundle(&a.out, &like.manifest)?;
    // After the write: a refusal stays one line.
    for w in &like.warnings {
        eprintln!("certs: warning: {w}");
    }
    let bundle = super::reissue::absolute(&a.out);
    let mut out = std::io::stdout().lock();
    match a.output {
        ResultOutput::Json => {
            let report = report(&like, now, &bundle);
            let text = serde_json::to_string_pretty(&report)
                .map_err(|e| Error::Output(std::io::Error::other(e)))?;
            writeln!(out, "{text}").map_err(Error::Output)?;
        }
        ResultOutput::Text => lines(&mut out, &like, &bundle).map_err(Error::Output)?,
    }
    Ok(exit::OK)
}

fn lines(out: &mut impl Write, l: &Like, bundle: &str) -> std::io::Result<()> {
    let info = &l.issued.info;
    writeln!(
        out,
        "{}: like {} ({}), signed by {}",
        info.subject,
        l.template.path.display(),
        l.template.info.subject,
        l.ca.0
    )?;
    for s in &l.edit.added {
        writeln!(out, "  + {s}")?;
    }
    for s in &l.edit.removed {
        writeln!(out, "  - {s}")?;
    }
    for s in &l.edit.already_present {
        writeln!(out, "  = {s} (already the template's)")?;
    }
    let kept = l.diff.after.len() - l.diff.added.len();
    writeln!(
        out,
        "  {kept} SANs of the template kept; usages as the template's; serial {}; new key {} ({}); valid until {}",
        info.serial,
        info.key,
        l.key_format_from,
        crate::duration::rfc3339(info.not_after)
    )?;
    writeln!(
        out,
        "bundle written to {bundle} ({} new files, bundle.json); install with `certs rollout apply {bundle}`",
        l.manifest.files.len()
    )?;
    for f in &l.manifest.files {
        writeln!(
            out,
            "  {} -> {} (new file, mode {})",
            f.bundle_path.display(),
            f.target.display(),
            f.mode
        )?;
    }
    Ok(())
}

/// `certs.issue/v1`: what was issued, like what, where it went.
#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    now: String,
    changed: bool,
    bundle: &'a str,
    like: String,
    template_subject: &'a str,
    subject: &'a str,
    ca: &'a str,
    serial: &'a str,
    not_before: String,
    not_after: String,
    sans: &'a SanDiff,
    key: KeyReport,
    key_usage: &'a [String],
    ext_key_usage: &'a [String],
    files: Vec<FileReport<'a>>,
    warnings: &'a [String],
}

#[derive(Serialize)]
struct KeyReport {
    algo: String,
    size: u32,
    format: &'static str,
}

#[derive(Serialize)]
struct FileReport<'a> {
    bundle_path: String,
    target: String,
    kind: &'a str,
    mode: &'a str,
}

fn report<'a>(l: &'a Like, now: i64, bundle: &'a str) -> Report<'a> {
    use crate::pki::key::KeyFormat;
    let info = &l.issued.info;
    Report {
        schema: "certs.issue/v1",
        now: crate::duration::rfc3339(now),
        changed: true,
        bundle,
        like: l.template.path.display().to_string(),
        template_subject: &l.template.info.subject,
        subject: &info.subject,
        ca: &l.ca.0,
        serial: &info.serial,
        not_before: crate::duration::rfc3339(info.not_before),
        not_after: crate::duration::rfc3339(info.not_after),
        sans: &l.diff,
        key: KeyReport {
            algo: info.key.algo.clone(),
            size: info.key.size,
            format: match l.key_format {
                KeyFormat::Pkcs1 => "pkcs1",
                KeyFormat::Sec1 => "sec1",
                _ => "pkcs8",
            },
        },
        key_usage: &info.key_usage,
        ext_key_usage: &info.ext_key_usage,
        files: l
            .manifest
            .files
            .iter()
            .map(|f| FileReport {
                bundle_path: f.bundle_path.display().to_string(),
                target: f.target.display().to_string(),
                kind: f.kind,
                mode: &f.mode,
            })
            .collect(),
        warnings: &l.warnings,
    }
}
