//! The checks of files against the SHA-256 the bundle and the backup recorded: before a
//! rollout changes anything, before a resume or a rollback touches anything, and for `status`.

use std::path::Path;

use serde::Serialize;

use super::backup::read_backup_manifest;
use super::{at_old, current_sha, is_new_file};
use crate::error::{Error, Result};
use crate::pki::cert::sha256_hex;
use crate::rollout::journal::{Journal, StepState};
use crate::rollout::plan::{FileSwap, Plan};

/// The SHA-256 check of the tree against the plan before anything changes (only that): every
/// bundle file intact, every target still the file the bundle was made from (or already the
/// new one); a file the bundle adds, nothing there yet (or already the new one).
pub(super) fn verify_hashes(plan: &Plan) -> Result<()> {
    for f in &plan.files {
        let source = current_sha(&f.source);
        if source.as_deref() != Some(f.new_sha256.as_str()) {
            return Err(Error::Input {
                path: f.source.clone(),
                expected: format!("the bundle file with SHA-256 {}", f.new_sha256),
                found: source.map_or("no readable file".into(), |s| format!("SHA-256 {s}")),
            });
        }
        let now = current_sha(&f.target);
        if is_new_file(f) {
            if !crate::sys::fs::is_absent(&f.target)
                && now.as_deref() != Some(f.new_sha256.as_str())
            {
                return Err(Error::Input {
                    path: f.target.clone(),
                    expected: "nothing there (the bundle adds this file)".into(),
                    found: now.map_or("something that is not a readable file".into(), |s| {
                        format!("a file (SHA-256 {s}) the bundle would replace")
                    }),
                });
            }
            continue;
        }
        if now.as_deref() != Some(f.old_sha256.as_str())
            && now.as_deref() != Some(f.new_sha256.as_str())
        {
            return Err(Error::Input {
                path: f.target.clone(),
                expected: format!(
                    "the file the bundle was made from (SHA-256 {})",
                    f.old_sha256
                ),
                found: now.map_or("no readable file".into(), |s| {
                    format!("a file changed since (SHA-256 {s})")
                }),
            });
        }
    }
    Ok(())
}
/// What a target holds, compared with the journal's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Held {
    /// The file the bundle was made from (or nothing, for a file the bundle adds).
    Old,
    /// The bundle's new file.
    New,
    /// Something else, or nothing readable.
    Other,
}

/// What `f`'s target holds now.
pub fn held(f: &FileSwap) -> Held {
    match current_sha(&f.target) {
        Some(s) if s == f.new_sha256 => Held::New,
        _ if at_old(f) => Held::Old,
        _ => Held::Other,
    }
}

/// Where the files on disk contradict the journal, one line each: a step whose files are part
/// old, part new (a certificate and its key that do not pair), a file that is neither, a `Done`
/// rollout with a file not new, a rolled-back one with a file not old. Empty when they agree.
pub fn contradictions(j: &Journal) -> Vec<String> {
    let plan = &j.plan;
    let mut out = Vec::new();
    let name = |f: &FileSwap| f.link.as_ref().unwrap_or(&f.target).display().to_string();
    for (si, step) in plan.steps.iter().enumerate() {
        let files: Vec<(&FileSwap, Held)> = step
            .files
            .iter()
            .map(|&i| (&plan.files[i], held(&plan.files[i])))
            .collect();
        let list = |h: Held| {
            files
                .iter()
                .filter(|(_, x)| *x == h)
                .map(|(f, _)| name(f))
                .collect::<Vec<_>>()
        };
        let (old, new, other) = (list(Held::Old), list(Held::New), list(Held::Other));
        if !old.is_empty() && !new.is_empty() {
            out.push(format!(
                "{}: {} old but {} new (a certificate and its key may not pair)",
                step.component,
                old.join(", "),
                new.join(", ")
            ));
        }
        if !other.is_empty() {
            out.push(format!(
                "{}: {} neither the old nor the new file (changed since, or unreadable)",
                step.component,
                other.join(", ")
            ));
        }
        let state = j.steps.get(si).copied().unwrap_or(StepState::Pending);
        let wrong = match state {
            StepState::Healthy if !old.is_empty() && new.is_empty() => Some(("old", "new")),
            StepState::RolledBack | StepState::Pending if !new.is_empty() && old.is_empty() => {
                Some(("new", "old"))
            }
            _ => None,
        };
        if let Some((is, want)) = wrong {
            out.push(format!(
                "{}: the journal says {state:?} but its files are the {is} ones, not the {want}",
                step.component
            ));
        }
    }
    out
}

/// Bytes read for `what` at `path` must have the recorded SHA-256.
pub(super) fn check_sha(
    path: &Path,
    bytes: &[u8],
    want: &str,
    what: &'static str,
) -> std::result::Result<(), crate::rollout::Error> {
    let got = sha256_hex(bytes);
    if got == want {
        Ok(())
    } else {
        Err(crate::rollout::Error::Sha {
            path: path.to_path_buf(),
            what,
            want: want.into(),
            got,
        })
    }
}

/// Every bundle file a resumed rollout would still install (its target does not hold it yet)
/// must be the one the bundle recorded; the first that is not refuses, one line.
pub(super) fn verify_bundle(plan: &Plan) -> Result<()> {
    for f in &plan.files {
        if current_sha(&f.target).as_deref() == Some(f.new_sha256.as_str()) {
            continue;
        }
        let now = current_sha(&f.source);
        if now.as_deref() != Some(f.new_sha256.as_str()) {
            return Err(Error::Input {
                path: f.source.clone(),
                expected: format!(
                    "the bundle file the rollout recorded (SHA-256 {}); nothing was changed",
                    f.new_sha256
                ),
                found: now.map_or("no readable file".into(), |s| format!("SHA-256 {s}")),
            });
        }
    }
    Ok(())
}

/// Every file of the recorded rollout's backup must be the original it recorded: the manifest
/// lists each target (SHA-256 as the bundle was made from), and each backed-up file still has
/// that SHA-256. The first that does not refuses, one line.
pub(super) fn verify_backup(j: &Journal) -> Result<()> {
    let entries = read_backup_manifest(&j.backup)?;
    for f in &j.plan.files {
        if is_new_file(f) {
            continue;
        }
        let Some(e) = entries.iter().find(|e| e.target == f.target && !e.absent) else {
            return Err(Error::Input {
                path: j.backup.join("manifest.json"),
                expected: format!("a backup of `{}`", f.target.display()),
                found: "none listed; nothing was changed".into(),
            });
        };
        let now = current_sha(&e.file);
        if e.sha256 != f.old_sha256 || now.as_deref() != Some(f.old_sha256.as_str()) {
            return Err(Error::Input {
                path: e.file.clone(),
                expected: format!(
                    "the backup of `{}` with SHA-256 {}; nothing was changed",
                    f.target.display(),
                    f.old_sha256
                ),
                found: now.map_or("no readable file".into(), |s| format!("SHA-256 {s}")),
            });
        }
    }
    Ok(())
}
