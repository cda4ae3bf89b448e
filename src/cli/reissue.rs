//! `certs reissue`: an adapter over [`crate::issue::reissue::reissue`] and the bundle writer.
//! The per-target lines, the bundle writing and the JSON document are shared with `renew`.

use std::io::Write;
use std::path::Path;

use super::args::ResultOutput;
use super::config::ReissueConfig;
use super::outcome::Outcome as Verdict;
use crate::error::{Error, Result};
use crate::issue::bundle::Manifest;
use crate::issue::reissue::{reissue, Action, Outcome, ReissueRequest};
use crate::issue::report::Report;

pub fn run(c: &ReissueConfig) -> Result<Verdict> {
    let req = ReissueRequest {
        targets: &c.certs,
        edit: &c.edit,
        ca: c.ca.as_ref().map(|(a, b)| (a.as_path(), b.as_path())),
        new_key: c.new_key,
        key_algo: c.key_algo.clone(),
        validity: c.validity,
        now: c.now,
    };
    let mut r = reissue(&req)?;
    let refused = r.refused();
    for o in r.outcomes.iter().filter(|o| o.action == Action::Refused) {
        eprintln!(
            "certs: error: {}: {}",
            who(o),
            o.reason.as_deref().unwrap_or("refused")
        );
    }
    // One bundle for every target or none: with a refusal, the others are not written either.
    if refused > 0 {
        let mut held_back = 0;
        for o in r
            .outcomes
            .iter_mut()
            .filter(|o| o.action == Action::Reissued)
        {
            o.action = Action::Refused;
            o.reason = Some(format!(
                "not written: reissue writes all its targets or none, and {refused} {} refused",
                if refused == 1 { "was" } else { "were" }
            ));
            held_back += 1;
        }
        if held_back > 0 {
            eprintln!("certs: nothing written: {held_back} other target(s) not reissued either");
        }
    }
    warn(&r.outcomes);
    let manifest = r.manifest.as_ref().filter(|_| refused == 0);
    let written = match manifest {
        Some(m) if !c.dry_run => {
            write_bundle(&c.out, m)?;
            Some(absolute(&c.out))
        }
        _ => None,
    };
    let mut out = std::io::stdout().lock();
    let w = Error::Output;
    match c.output {
        ResultOutput::Json => {
            let report = crate::issue::report::build(
                "certs.reissue/v1",
                c.now,
                &r.outcomes,
                None,
                manifest,
                written,
                c.dry_run,
            );
            print_json(&mut out, &report)?;
        }
        ResultOutput::Text => {
            for o in &r.outcomes {
                outcome_lines(&mut out, o).map_err(w)?;
            }
            if refused == 0 {
                bundle_lines(&mut out, manifest, &c.out, c.dry_run).map_err(w)?;
            }
        }
    }
    // Each refusal was said on stderr above: exit 2, as a refusal, with the JSON still printed.
    Ok(if refused > 0 {
        Verdict::Refused
    } else {
        Verdict::Clean
    })
}

/// `path` or `path (user NAME)`.
pub(super) fn who(o: &Outcome) -> String {
    match &o.target.user {
        Some(user) => format!("{} (user {user})", o.target.path.display()),
        None => o.target.path.display().to_string(),
    }
}

/// Each reissued target's warnings (validity clamped …), on stderr.
pub(super) fn warn(outcomes: &[Outcome]) {
    for o in outcomes.iter().filter(|o| o.action == Action::Reissued) {
        for warning in o.issued.iter().flat_map(|i| &i.warnings) {
            eprintln!("certs: warning: {}: {warning}", who(o));
        }
    }
}

/// What happened to one target, for people. Refusals are said on stderr, not here.
pub(super) fn outcome_lines(out: &mut dyn Write, o: &Outcome) -> std::io::Result<()> {
    let who = who(o);
    match (o.action, &o.issued) {
        (Action::Reissued, Some(issued)) => {
            let ca = o.ca.as_ref().map(|(l, _)| l.as_str()).unwrap_or("?");
            writeln!(out, "{who}: {} signed by {ca}", o.target.info.subject)?;
            if let Some(edit) = &o.edit {
                for s in &edit.added {
                    writeln!(out, "  + {s}")?;
                }
                for s in &edit.removed {
                    writeln!(out, "  - {s}")?;
                }
                for s in &edit.already_present {
                    writeln!(out, "  = {s} (already present)")?;
                }
            }
            for s in &o.cancelled {
                writeln!(out, "  = {s} (dropped and added back: kept)")?;
            }
            let kept = o.diff.after.len() - o.diff.added.len();
            let key = if issued.new_key.is_some() {
                "new key"
            } else {
                "key kept"
            };
            writeln!(
                out,
                "  {kept} SANs kept; serial {} -> {}; {key}; valid until {}",
                o.target.info.serial,
                issued.info.serial,
                crate::duration::rfc3339(issued.info.not_after)
            )
        }
        (Action::Unchanged, _) => writeln!(
            out,
            "{who}: unchanged: {}",
            o.reason.as_deref().unwrap_or("nothing to do")
        ),
        _ => Ok(()),
    }
}

/// The closing lines: where the bundle went, or that nothing was written.
pub(super) fn bundle_lines(
    out: &mut dyn Write,
    manifest: Option<&Manifest>,
    dir: &Path,
    dry_run: bool,
) -> std::io::Result<()> {
    let Some(m) = manifest else {
        return writeln!(out, "nothing to reissue: no bundle written");
    };
    if dry_run {
        let to = if dir.as_os_str().is_empty() {
            String::new()
        } else {
            format!(" to {}", dir.display())
        };
        writeln!(
            out,
            "dry run: would write {} files and bundle.json{to}",
            m.files.len()
        )?;
        for f in &m.files {
            writeln!(
                out,
                "  {} (replaces {})",
                f.bundle_path.display(),
                f.target.display()
            )?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "bundle written to {} ({} files, bundle.json); originals untouched",
        dir.display(),
        m.files.len()
    )
}

pub(super) fn write_bundle(dir: &Path, m: &Manifest) -> Result<()> {
    let manifest = serde_json::to_vec_pretty(m).map_err(|e| Error::Usage(e.to_string()))?;
    let files: Vec<_> = m
        .files
        .iter()
        .map(|f| {
            let mode = u32::from_str_radix(&f.mode, 8).unwrap_or(0o600);
            (f.bundle_path.clone(), mode, f.contents.clone())
        })
        .collect();
    Ok(crate::sys::fs::write_bundle(dir, &files, &manifest)?)
}

pub(super) fn print_json(out: &mut dyn Write, report: &Report) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)
        .map_err(|e| Error::Output(std::io::Error::other(e)))?;
    writeln!(out).map_err(Error::Output)
}

pub(super) fn absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}
