//! Running one file step forward: swap its files atomically (certificate and key renamed back
//! to back), restart its component, and gate on health.

use std::path::{Path, PathBuf};

use super::check::check_sha;
use super::{current_sha, is_new_file, Executor};
use crate::rollout;
use crate::rollout::journal::{Journal, StepState};
use crate::rollout::plan::{Plan, Step};
use crate::sys::clock::Stopwatch;

impl Executor<'_> {
    pub(super) fn run_step(
        &mut self,
        j: &mut Journal,
        i: usize,
        step: &Step,
    ) -> std::result::Result<(), rollout::Error> {
        let name = step.component.clone();
        j.steps[i] = StepState::Swapping;
        self.save(j)?;
        let t = Stopwatch::start();
        self.event(
            &name,
            "swap",
            "start",
            t,
            Some(format!("{} file(s)", step.files.len())),
        );
        self.swap(&j.plan, step, true)
            .inspect_err(|e| self.event(&name, "swap", "failed", t, Some(e.to_string())))?;
        self.event(&name, "swap", "ok", t, None);
        j.steps[i] = StepState::Swapped;
        self.save(j)?;
        if let Some(restart) = &step.restart {
            j.steps[i] = StepState::Restarting;
            self.save(j)?;
            let t = Stopwatch::start();
            self.event(&name, "restart", "start", t, None);
            (self.fault)(&format!("restart {name}"))?;
            self.restarter
                .restart(restart)
                .inspect_err(|e| self.event(&name, "restart", "failed", t, Some(e.to_string())))?;
            self.event(&name, "restart", "ok", t, None);
        }
        self.gates(&j.plan, step, true)?;
        j.steps[i] = StepState::Healthy;
        j.note(
            (self.now)(),
            format!("{name}: healthy on the new certificate"),
        );
        self.save(j).map_err(rollout::Error::from)
    }

    /// Replaces a step's files with the new ones (`to_new`) or the backed-up ones. Idempotent:
    /// files already in the wanted state are left alone, so a resumed swap finishes the job.
    pub(super) fn swap(
        &self,
        plan: &Plan,
        step: &Step,
        to_new: bool,
    ) -> std::result::Result<(), rollout::Error> {
        let backup = self.backup_entries()?;
        let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut removed: Vec<&Path> = Vec::new();
        for &fi in &step.files {
            let f = &plan.files[fi];
            if !to_new && is_new_file(f) {
                // A file the bundle added: as it was is no file.
                if !crate::sys::fs::is_absent(&f.target) {
                    removed.push(&f.target);
                }
                continue;
            }
            let want = if to_new { &f.new_sha256 } else { &f.old_sha256 };
            if current_sha(&f.target).as_deref() == Some(want.as_str()) {
                continue;
            }
            let recorded = backup.iter().find(|b| b.target == f.target);
            let recorded_owner = recorded.and_then(|b| b.uid.zip(b.gid));
            // The new file: the bundle's mode, the owner and group of the file it replaces (the
            // recorded ones if the target is gone). The old one: everything as recorded.
            // The bytes installed are checked at the moment they are used, against the SHA-256
            // the bundle recorded (new) or the bundle was made from (old).
            let (bytes, mode, owner) = if to_new {
                let bytes = crate::sys::fs::read_file(&f.source).map_err(|e| {
                    rollout::Error::ReadBundleFile {
                        path: f.source.clone(),
                        source: Box::new(e.into()),
                    }
                })?;
                check_sha(&f.source, &bytes, &f.new_sha256, "the bundle file")?;
                (
                    bytes,
                    f.mode,
                    crate::sys::fs::owner(&f.target).or(recorded_owner),
                )
            } else {
                let b = recorded.ok_or_else(|| rollout::Error::NoBackup {
                    target: f.target.clone(),
                })?;
                let bytes =
                    crate::sys::fs::read_file(&b.file).map_err(|e| rollout::Error::ReadBackup {
                        path: b.file.clone(),
                        source: Box::new(e.into()),
                    })?;
                check_sha(&b.file, &bytes, &f.old_sha256, "the backup")?;
                (bytes, b.mode, recorded_owner)
            };
            let tmp = crate::sys::fs::temp_beside(&f.target);
            (self.fault)(&format!("stage {}", f.target.display()))?;
            crate::sys::fs::write_synced_as(&tmp, &bytes, mode, owner)?;
            staged.push((tmp, f.target.clone()));
        }
        // All temps are written: the renames follow back to back, so a certificate and its key
        // disagree only between two renames.
        for (tmp, target) in &staged {
            (self.fault)(&format!("rename {}", target.display()))?;
            crate::sys::fs::commit_temp(tmp, target)?;
        }
        for target in removed {
            crate::sys::fs::remove_if_present(target).map_err(|source| rollout::Error::Remove {
                path: target.to_path_buf(),
                source,
            })?;
            crate::sys::fs::sync_dir(target.parent().unwrap_or(Path::new(".")))?;
        }
        if to_new {
            verify_pairs(plan, step)?;
        }
        Ok(())
    }

    pub(super) fn gates(
        &mut self,
        plan: &Plan,
        step: &Step,
        new: bool,
    ) -> std::result::Result<(), rollout::Error> {
        for gate in &step.gates {
            let serial = gate.serves.and_then(|i| {
                if new {
                    plan.files[i].new_serial.clone()
                } else {
                    plan.files[i].old_serial.clone()
                }
            });
            let t = Stopwatch::start();
            let which = if new { "new" } else { "old" };
            self.event(
                &step.component,
                "health",
                "start",
                t,
                Some(format!("{} must serve the {which} certificate", gate.url)),
            );
            loop {
                let last = match self.prober.check(gate, serial.as_deref()) {
                    Ok(()) => break,
                    Err(e) => e,
                };
                if t.elapsed() >= self.timing.deadline {
                    let e = rollout::Error::GateTimeout {
                        url: gate.url.clone(),
                        which,
                        secs: self.timing.deadline.as_secs(),
                        source: Box::new(last),
                    };
                    self.event(&step.component, "health", "failed", t, Some(e.to_string()));
                    return Err(e);
                }
                crate::sys::clock::sleep(self.timing.interval);
            }
            self.event(
                &step.component,
                "health",
                "ok",
                t,
                serial.map(|s| format!("serving serial {s}")),
            );
        }
        Ok(())
    }
}

/// After a swap: every certificate of the step must pair with the private key of the step (if
/// the step replaces one) — the pair is re-read from disk.
pub(super) fn verify_pairs(plan: &Plan, step: &Step) -> std::result::Result<(), rollout::Error> {
    use crate::pki::decode::{decode, Item};
    let read = |p: &Path| {
        crate::sys::fs::read_file(p)
            .map(|b| decode(p, &b).items)
            .unwrap_or_default()
    };
    let keys: Vec<_> = step
        .files
        .iter()
        .filter(|&&f| plan.files[f].kind == "private-key")
        .flat_map(|&f| read(&plan.files[f].target))
        .filter_map(|i| match i {
            Item::Key { info, .. } => info.public_key,
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    for &f in step
        .files
        .iter()
        .filter(|&&f| plan.files[f].kind == "certificate")
    {
        let target = &plan.files[f].target;
        let cert = read(target).into_iter().find_map(|i| match i {
            Item::Cert { index: 0, info } => Some(info),
            _ => None,
        });
        match cert {
            Some(c) if keys.contains(&c.public_key) => {}
            _ => {
                return Err(rollout::Error::NotPaired {
                    path: target.clone(),
                })
            }
        }
    }
    Ok(())
}
