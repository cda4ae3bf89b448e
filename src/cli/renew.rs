//! `certs renew`: an adapter over [`crate::issue::renew::renew`]; lines, bundle and JSON as
//! `reissue` makes them.

use std::io::Write;

use super::args::ResultOutput;
use super::config::RenewConfig;
use super::outcome::Outcome;
use super::reissue::{absolute, bundle_lines, outcome_lines, print_json, who, write_bundle};
use crate::error::{Error, Result};
use crate::issue::reissue::Action;
use crate::issue::renew::{renew, RenewRequest};

pub fn run(c: &RenewConfig) -> Result<Outcome> {
    let req = RenewRequest {
        paths: &c.paths,
        root: &c.root,
        within: c.within,
        all: c.all,
        ca: c.ca.as_ref().map(|(a, b)| (a.as_path(), b.as_path())),
        validity: c.validity,
        now: c.now,
    };
    let r = renew(&req)?;
    for o in r.outcomes.iter().filter(|o| o.action == Action::Refused) {
        eprintln!(
            "certs: refused: {}: {}",
            who(o),
            o.reason.as_deref().unwrap_or("refused")
        );
    }
    super::reissue::warn(&r.outcomes);
    let written = match (&r.manifest, &c.out) {
        (Some(m), Some(dir)) if !c.dry_run => {
            write_bundle(dir, m)?;
            Some(absolute(dir))
        }
        _ => None,
    };
    let mut out = std::io::stdout().lock();
    let w = Error::Output;
    let window = if c.all {
        "every leaf".to_string()
    } else {
        format!(
            "leaves expiring before {} (within {} of {})",
            crate::duration::rfc3339(c.now + c.within),
            crate::duration::short_human(c.within),
            crate::duration::rfc3339(c.now)
        )
    };
    match c.output {
        ResultOutput::Json => {
            let mut report = crate::issue::report::build(
                "certs.renew/v1",
                c.now,
                &r.outcomes,
                Some(&r.statuses),
                r.manifest.as_ref(),
                written,
                c.dry_run,
            );
            report.within_seconds = Some((!c.all).then_some(c.within));
            report.scanned = Some(r.scanned.iter().map(|p| absolute(p)).collect());
            print_json(&mut out, &report)?;
        }
        ResultOutput::Text => {
            let scanned: Vec<String> = r.scanned.iter().map(|p| absolute(p)).collect();
            writeln!(out, "renewing {window}, read from {}", scanned.join(", ")).map_err(w)?;
            for o in r.outcomes.iter().filter(|o| o.action == Action::Reissued) {
                outcome_lines(&mut out, o).map_err(w)?;
            }
            let not_due = r.count(Action::Unchanged);
            if not_due > 0 {
                writeln!(out, "not due ({not_due}):").map_err(w)?;
                for o in r.outcomes.iter().filter(|o| o.action == Action::Unchanged) {
                    writeln!(
                        out,
                        "  {}: valid until {}",
                        who(o),
                        crate::duration::rfc3339(o.target.info.not_after)
                    )
                    .map_err(w)?;
                }
            }
            let refused = r.count(Action::Refused);
            if refused > 0 {
                writeln!(out, "refused ({refused}, why on stderr):").map_err(w)?;
                for o in r.outcomes.iter().filter(|o| o.action == Action::Refused) {
                    writeln!(out, "  {}", who(o)).map_err(w)?;
                }
            }
            match (&r.manifest, &c.out) {
                (None, _) if refused == 0 => {
                    writeln!(out, "nothing due: no bundle written").map_err(w)?
                }
                (None, _) => writeln!(out, "nothing renewed: no bundle written").map_err(w)?,
                (Some(m), dir) => {
                    let dir = dir.clone().unwrap_or_default();
                    bundle_lines(&mut out, Some(m), &dir, c.dry_run).map_err(w)?;
                    if !c.dry_run {
                        let root = if c.root == std::path::Path::new("/") {
                            String::new()
                        } else {
                            format!(" --root {}", c.root.display())
                        };
                        writeln!(
                            out,
                            "install it with `certs rollout plan {0}{root}`, then `certs rollout apply {0}{root}`",
                            dir.display()
                        )
                        .map_err(w)?;
                    }
                }
            }
        }
    }
    Ok(if r.count(Action::Refused) > 0 {
        Outcome::Problem
    } else {
        Outcome::Clean
    })
}
