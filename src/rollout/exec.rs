//! Executing a plan: back up, swap atomically, restart one component at a time, gate on health
//! (the endpoint must serve the NEW serial), and roll back on failure — with a journal written
//! around every mutating action so a killed run can be resumed or rolled back.
//!
//! Side effects on components go through two small traits with one real implementation each
//! ([`super::probe`]); files are real files, touched only through [`crate::sys::fs`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sys::clock::Stopwatch;

use serde::{Deserialize, Serialize};

use super::journal::{Journal, Outcome, StepState};
use super::plan::{FileSwap, Gate, Plan, Step};
use super::profile::Restart;
use crate::error::{Error, Result};
use crate::pki::cert::sha256_hex;

/// Restarts a component.
pub trait Restarter {
    fn restart(&self, restart: &Restart) -> std::result::Result<(), String>;
}

/// Checks one health gate once: Ok when the endpoint is healthy and serves `serial`.
pub trait Prober {
    fn check(&self, gate: &Gate, serial: Option<&str>) -> std::result::Result<(), String>;
}

/// How long a gate may take to pass, and how often it is tried.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub deadline: Duration,
    pub interval: Duration,
}

/// Progress, for the terminal or one JSON object per line.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339, when the event happened.
    pub time: String,
    pub component: String,
    pub action: String,
    /// `start`, `ok`, `failed`.
    pub status: &'static str,
    pub elapsed_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Executor<'a> {
    pub state_dir: PathBuf,
    pub restarter: &'a dyn Restarter,
    pub prober: &'a dyn Prober,
    pub timing: Timing,
    pub now: &'a dyn Fn() -> i64,
    pub on_event: &'a mut dyn FnMut(&Event),
    /// Called before every mutating action with its label; an Err injects a failure there.
    /// Production passes a function that always says Ok.
    pub fault: &'a dyn Fn(&str) -> std::result::Result<(), String>,
    /// The etcd requests of membership steps ([`super::membership::NoEtcd`] without them).
    pub etcd: &'a dyn super::membership::EtcdAdmin,
}

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Done,
    /// Every target already holds the bundle's new file: nothing was changed or recorded (the
    /// rollout that installed them keeps its journal and its backup of the original files).
    AlreadyApplied,
    /// Failed at `component`, whose files were restored; it runs on the old certificate again.
    RolledBack {
        component: String,
        reason: String,
    },
    /// Failed, and restoring failed too: the message says what to do by hand.
    RollbackFailed {
        component: String,
        reason: String,
        manual: String,
    },
    /// Stopped in an etcd membership step. They come after every file step, which all passed
    /// their gates, so no file needs
    /// restoring; `done` is what the membership steps changed (a removal cannot be undone).
    /// `resumable`: a member was removed, the rollout stays interrupted and `resume` continues;
    /// otherwise nothing was changed and the rollout ended.
    Stopped {
        component: String,
        step: String,
        reason: String,
        done: Vec<String>,
        resumable: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct BackupEntry {
    target: PathBuf,
    file: PathBuf,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    sha256: String,
    /// Nothing was at `target` (a file the bundle adds, `certs issue`): restoring it removes
    /// the file; there is no backup `file`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    absent: bool,
}

/// The SHA-256 of a target, backup or bundle file: a regular file of bounded size only (a FIFO
/// is never opened, a link to a device never read).
fn current_sha(path: &Path) -> Option<String> {
    crate::sys::fs::read_opt_bounded(path).map(|b| sha256_hex(&b))
}

/// A file the bundle adds (`certs issue`: bundle.json's `old_sha256` is empty): before the
/// rollout nothing is at its target, and a rollback removes it again.
fn is_new_file(f: &FileSwap) -> bool {
    f.old_sha256.is_empty()
}

/// Whether a target is as it was before the rollout: the old file, or for a new file, nothing.
fn at_old(f: &FileSwap) -> bool {
    if is_new_file(f) {
        crate::sys::fs::is_absent(&f.target)
    } else {
        current_sha(&f.target).as_deref() == Some(f.old_sha256.as_str())
    }
}

impl Executor<'_> {
    pub(super) fn event(
        &mut self,
        component: &str,
        action: &str,
        status: &'static str,
        started: Stopwatch,
        detail: Option<String>,
    ) {
        let e = Event {
            time: crate::duration::rfc3339((self.now)()),
            component: component.into(),
            action: action.into(),
            status,
            elapsed_ms: started.elapsed().as_millis(),
            detail,
        };
        (self.on_event)(&e);
    }

    /// Every journal transition goes through here: a fault point (`journal`) before it, so a
    /// test can kill the run right before each one.
    pub(super) fn save(&self, j: &Journal) -> Result<()> {
        (self.fault)("journal").map_err(Error::Usage)?;
        j.save(&self.state_dir)
    }

    /// Checks the tree against the plan before anything changes: every bundle file intact, every
    /// target still the file the bundle was made from (or already the new one); a file the bundle
    /// adds, nothing there yet (or already the new one).
    pub fn preflight(plan: &Plan) -> Result<()> {
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

    /// Whether every target already holds the bundle's new file (and the plan has nothing else
    /// to do: no etcd membership step, no restart asked for without a file).
    pub fn already_applied(plan: &Plan) -> bool {
        !plan.files.is_empty()
            && plan.etcd.is_none()
            && plan.steps.iter().all(|s| !s.files.is_empty())
            && plan
                .files
                .iter()
                .all(|f| current_sha(&f.target).as_deref() == Some(f.new_sha256.as_str()))
    }

    /// Runs a plan from the start. A plan whose targets all hold their new files already changes
    /// nothing ([`Ended::AlreadyApplied`]); the journal of the state directory's last rollout is
    /// kept in `journals/` before the new one replaces it.
    pub fn apply(&mut self, plan: &Plan) -> Result<Ended> {
        let previous = Journal::load(&self.state_dir)?;
        if let Some(j) = &previous {
            if matches!(j.outcome, Outcome::Running | Outcome::RollingBack) {
                return Err(Error::Usage(format!(
                    "an interrupted rollout is recorded in {}: run `certs rollout status`, then `resume` or `rollback`",
                    super::journal::path(&self.state_dir).display()
                )));
            }
        }
        Self::preflight(plan)?;
        if Self::already_applied(plan) {
            return Ok(Ended::AlreadyApplied);
        }
        let originals = self.originals(plan)?;
        let backup = self.backup(plan, &originals)?;
        if let Some(prev) = &previous {
            prev.archive(&self.state_dir)?;
        }
        let mut j = Journal::new(plan.clone(), backup);
        j.note((self.now)(), "started".into());
        self.save(&j)?;
        self.run_from(&mut j, 0)
    }

    /// The original bytes (and recorded mode and owner) of every target that already holds
    /// the bundle's new file, from a backup of an earlier rollout in this state directory, each
    /// checked against the SHA-256 the bundle was made from. A target whose original is not
    /// there is refused: backing up the new file would leave no way back to the original.
    fn originals(&self, plan: &Plan) -> Result<Vec<(usize, BackupEntry, Vec<u8>)>> {
        let mut out = Vec::new();
        let at_new: Vec<usize> = (0..plan.files.len())
            .filter(|&n| {
                let f = &plan.files[n];
                !is_new_file(f) && current_sha(&f.target).as_deref() == Some(f.new_sha256.as_str())
            })
            .collect();
        if at_new.is_empty() {
            return Ok(out);
        }
        let mut journals = Journal::archived(&self.state_dir)?;
        journals.extend(Journal::load(&self.state_dir)?);
        for n in at_new {
            let f = &plan.files[n];
            let found = journals.iter().rev().find_map(|j| {
                let entries = read_backup_manifest(&j.backup).ok()?;
                let e = entries
                    .into_iter()
                    .find(|e| e.target == f.target && !e.absent && e.sha256 == f.old_sha256)?;
                let bytes = crate::sys::fs::read_file(&e.file).ok()?;
                (sha256_hex(&bytes) == f.old_sha256).then_some((e, bytes))
            });
            match found {
                Some((e, bytes)) => out.push((n, e, bytes)),
                None => {
                    return Err(Error::Input {
                        path: f.target.clone(),
                        expected: format!(
                            "the file the bundle was made from (SHA-256 {}) or a backup of it in {}",
                            f.old_sha256,
                            self.state_dir.display()
                        ),
                        found: "the bundle's new file already while other targets are not, and no backup of the original here: a rollout of this bundle was interrupted elsewhere; finish it with `certs rollout resume` or `rollback` and that rollout's --state-dir".into(),
                    })
                }
            }
        }
        Ok(out)
    }

    /// Continues an interrupted rollout from its first unfinished step.
    pub fn resume(&mut self) -> Result<Ended> {
        let mut j = Journal::load(&self.state_dir)?
            .ok_or_else(|| Error::Usage("no rollout recorded to resume".into()))?;
        if matches!(j.outcome, Outcome::Running | Outcome::RollingBack) {
            // Before anything is touched: the bundle files still to install and the backups a
            // failed gate would restore must be the ones recorded.
            verify_bundle(&j.plan)?;
            verify_backup(&j)?;
        }
        if j.outcome == Outcome::RollingBack {
            // A rollback killed midway: resuming finishes it.
            return self.rollback(None);
        }
        let stuck = self.unpark(&mut j)?;
        if !stuck.is_empty() {
            return Err(Error::Usage(format!(
                "{}; then run `certs rollout resume` again",
                stuck.join("; ")
            )));
        }
        if j.outcome != Outcome::Running {
            return Err(Error::Usage(format!(
                "the recorded rollout is not interrupted (it ended: {:?}); nothing to resume",
                j.outcome
            )));
        }
        // Stopped in an etcd membership step: continue there (each checks what is done).
        if let Some(i) = j.steps.iter().position(|s| *s == StepState::Failed) {
            if super::membership::is_membership(&j.plan, i) {
                j.note(
                    (self.now)(),
                    format!("resumed at etcd membership step {}", i + 1),
                );
                self.save(&j)?;
                return self.run_from(&mut j, i);
            }
        }
        // Stopped while rolling a step back: finish that rollback, never run the step forward.
        if let Some(i) = j.steps.iter().position(|s| *s == StepState::Failed) {
            let step = j.plan.steps[i].clone();
            let reason = j
                .failure(&step.component)
                .unwrap_or("failed before the rollout was interrupted")
                .to_string();
            j.note(
                (self.now)(),
                format!("resumed: finishing the rollback of {}", step.component),
            );
            self.save(&j)?;
            return self.restore_step(&mut j, i, &step, &reason);
        }
        let first = j
            .steps
            .iter()
            .position(|s| *s != StepState::Healthy)
            .unwrap_or(j.steps.len());
        j.note((self.now)(), format!("resumed at step {}", first + 1));
        self.save(&j)?;
        self.run_from(&mut j, first)
    }

    /// A run stopped while a static pod was parked (its manifest beside the manifests directory,
    /// not in it): put every such manifest back before anything else, with a journal note and
    /// an event. Returns what could not be put back, each with what to do by hand.
    fn unpark(&mut self, j: &mut Journal) -> Result<Vec<String>> {
        let mut stuck = Vec::new();
        let mut moved = false;
        for step in &j.plan.steps.clone() {
            let Some(Restart::StaticPod(manifest)) = &step.restart else {
                continue;
            };
            let parked = super::probe::parked_path(manifest);
            let missing = crate::sys::fs::is_absent(manifest);
            if !missing || !parked.is_file() {
                continue;
            }
            let t = Stopwatch::start();
            let what = format!(
                "{} parked at {} when the rollout stopped",
                manifest.display(),
                parked.display()
            );
            self.event(&step.component, "unpark", "start", t, Some(what.clone()));
            match crate::sys::fs::move_synced(&parked, manifest) {
                Ok(()) => {
                    self.event(&step.component, "unpark", "ok", t, None);
                    j.note((self.now)(), format!("{}: put back {what}", step.component));
                    moved = true;
                }
                Err(e) => {
                    let msg = format!(
                        "cannot put back {what}: {e}; move it back by hand (`mv {} {}`)",
                        parked.display(),
                        manifest.display()
                    );
                    self.event(&step.component, "unpark", "failed", t, Some(msg.clone()));
                    j.note((self.now)(), format!("{}: {msg}", step.component));
                    stuck.push(msg);
                }
            }
        }
        if moved || !stuck.is_empty() {
            self.save(j)?;
        }
        Ok(stuck)
    }

    fn run_from(&mut self, j: &mut Journal, first: usize) -> Result<Ended> {
        let plan = j.plan.clone();
        for (i, step) in plan.steps.iter().enumerate().skip(first) {
            if super::membership::is_membership(&plan, i) {
                if let Err(stop) = self.run_membership(j, i) {
                    return self.membership_stopped(j, i, stop);
                }
                continue;
            }
            match self.run_step(j, i, step) {
                Ok(()) => {}
                Err(reason) => {
                    let ended = self.rollback_step(j, i, step, &reason)?;
                    return Ok(ended);
                }
            }
        }
        j.outcome = Outcome::Done;
        j.note((self.now)(), "done".into());
        self.save(j)?;
        Ok(Ended::Done)
    }

    fn run_step(
        &mut self,
        j: &mut Journal,
        i: usize,
        step: &Step,
    ) -> std::result::Result<(), String> {
        let name = step.component.clone();
        j.steps[i] = StepState::Swapping;
        self.save(j).map_err(|e| e.to_string())?;
        let t = Stopwatch::start();
        self.event(
            &name,
            "swap",
            "start",
            t,
            Some(format!("{} file(s)", step.files.len())),
        );
        self.swap(&j.plan, step, true)
            .inspect_err(|e| self.event(&name, "swap", "failed", t, Some(e.clone())))?;
        self.event(&name, "swap", "ok", t, None);
        j.steps[i] = StepState::Swapped;
        self.save(j).map_err(|e| e.to_string())?;
        if let Some(restart) = &step.restart {
            j.steps[i] = StepState::Restarting;
            self.save(j).map_err(|e| e.to_string())?;
            let t = Stopwatch::start();
            self.event(&name, "restart", "start", t, None);
            (self.fault)(&format!("restart {name}"))?;
            self.restarter
                .restart(restart)
                .inspect_err(|e| self.event(&name, "restart", "failed", t, Some(e.clone())))?;
            self.event(&name, "restart", "ok", t, None);
        }
        self.gates(&j.plan, step, true)?;
        j.steps[i] = StepState::Healthy;
        j.note(
            (self.now)(),
            format!("{name}: healthy on the new certificate"),
        );
        self.save(j).map_err(|e| e.to_string())
    }

    /// Replaces a step's files with the new ones (`to_new`) or the backed-up ones. Idempotent:
    /// files already in the wanted state are left alone, so a resumed swap finishes the job.
    fn swap(&self, plan: &Plan, step: &Step, to_new: bool) -> std::result::Result<(), String> {
        let backup = self.backup_entries().map_err(|e| e.to_string())?;
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
                let bytes = crate::sys::fs::read_file(&f.source)
                    .map_err(|e| format!("cannot read `{}`: {e}", f.source.display()))?;
                check_sha(&f.source, &bytes, &f.new_sha256, "the bundle file")?;
                (
                    bytes,
                    f.mode,
                    crate::sys::fs::owner(&f.target).or(recorded_owner),
                )
            } else {
                let b = recorded.ok_or_else(|| format!("no backup of `{}`", f.target.display()))?;
                let bytes = crate::sys::fs::read_file(&b.file)
                    .map_err(|e| format!("cannot read backup `{}`: {e}", b.file.display()))?;
                check_sha(&b.file, &bytes, &f.old_sha256, "the backup")?;
                (bytes, b.mode, recorded_owner)
            };
            let tmp = crate::sys::fs::temp_beside(&f.target);
            (self.fault)(&format!("stage {}", f.target.display()))?;
            crate::sys::fs::write_synced_as(&tmp, &bytes, mode, owner)
                .map_err(|e| e.to_string())?;
            staged.push((tmp, f.target.clone()));
        }
        // All temps are written: the renames follow back to back, so a certificate and its key
        // disagree only between two renames.
        for (tmp, target) in &staged {
            (self.fault)(&format!("rename {}", target.display()))?;
            crate::sys::fs::commit_temp(tmp, target).map_err(|e| e.to_string())?;
        }
        for target in removed {
            crate::sys::fs::remove_if_present(target)
                .map_err(|e| format!("cannot remove `{}`: {e}", target.display()))?;
            crate::sys::fs::sync_dir(target.parent().unwrap_or(Path::new(".")))
                .map_err(|e| e.to_string())?;
        }
        if to_new {
            verify_pairs(plan, step)?;
        }
        Ok(())
    }

    fn gates(&mut self, plan: &Plan, step: &Step, new: bool) -> std::result::Result<(), String> {
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
                    let msg = format!(
                        "{} not healthy on the {which} certificate within {}s: {last}",
                        gate.url,
                        self.timing.deadline.as_secs()
                    );
                    self.event(&step.component, "health", "failed", t, Some(msg.clone()));
                    return Err(msg);
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

    /// A step failed: restore its files, restart it on them, wait until it is healthy on the old
    /// certificate, and stop.
    fn rollback_step(
        &mut self,
        j: &mut Journal,
        i: usize,
        step: &Step,
        reason: &str,
    ) -> Result<Ended> {
        j.steps[i] = StepState::Failed;
        j.note(
            (self.now)(),
            format!("{}{reason}", failed_prefix(&step.component)),
        );
        self.save(j)?;
        self.restore_step(j, i, step, reason)
    }

    /// The rollback of a failed step (recorded `Failed`): files restored, restarted on them,
    /// healthy on the old certificate; the rollout ends there.
    fn restore_step(
        &mut self,
        j: &mut Journal,
        i: usize,
        step: &Step,
        reason: &str,
    ) -> Result<Ended> {
        let plan = j.plan.clone();
        let mut errors = Vec::new();
        let t = Stopwatch::start();
        self.event(&step.component, "rollback", "start", t, None);
        if let Err(e) = self.swap_back(&plan, step) {
            errors.push(e);
        } else if let Some(restart) = &step.restart {
            if let Err(e) = self.restarter.restart(restart) {
                errors.push(format!("restart on the old files failed: {e}"));
            } else if let Err(e) = self.gates(&plan, step, false) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            self.event(&step.component, "rollback", "ok", t, None);
            j.steps[i] = StepState::RolledBack;
            j.outcome = Outcome::RolledBack;
            j.note(
                (self.now)(),
                format!(
                    "{}: rolled back, healthy on the old certificate",
                    step.component
                ),
            );
            self.save(j)?;
            return Ok(Ended::RolledBack {
                component: step.component.clone(),
                reason: reason.into(),
            });
        }
        let manual = format!(
            "restore by hand from {}: copy each file listed in its manifest.json back to its target (one recorded `absent` was added by the bundle: remove it), then restart {}; rollback errors: {}",
            j.backup.display(),
            step.component,
            errors.join("; ")
        );
        self.event(
            &step.component,
            "rollback",
            "failed",
            t,
            Some(manual.clone()),
        );
        j.outcome = Outcome::RollbackFailed;
        j.note((self.now)(), manual.clone());
        self.save(j)?;
        Ok(Ended::RollbackFailed {
            component: step.component.clone(),
            reason: reason.into(),
            manual,
        })
    }

    /// Restoring must not be stopped by an injected fault: faults model the forward path.
    fn swap_back(&self, plan: &Plan, step: &Step) -> std::result::Result<(), String> {
        let quiet = Executor {
            state_dir: self.state_dir.clone(),
            restarter: self.restarter,
            prober: self.prober,
            timing: self.timing,
            now: self.now,
            on_event: &mut |_| {},
            fault: &|_| Ok(()),
            etcd: self.etcd,
        };
        quiet.swap(plan, step, false)
    }

    /// Restores every file of the recorded rollout (or of `backup`) that differs from its backup,
    /// then restarts the affected components in order and waits for the old certificates.
    pub fn rollback(&mut self, backup: Option<&Path>) -> Result<Ended> {
        let mut j = Journal::load(&self.state_dir)?
            .ok_or_else(|| Error::Usage("no rollout recorded to roll back".into()))?;
        if let Some(b) = backup {
            let same = |x: &Path| std::path::absolute(x).ok() == std::path::absolute(b).ok();
            if !same(&j.backup) {
                // An earlier rollout of this state directory, kept in `journals/`.
                let archived = Journal::archived(&self.state_dir)?;
                let Some(older) = archived.iter().rev().find(|o| same(&o.backup)) else {
                    let mut known: Vec<String> = archived
                        .iter()
                        .map(|o| o.backup.display().to_string())
                        .collect();
                    known.push(j.backup.display().to_string());
                    return Err(Error::Usage(format!(
                        "expected the backup of a rollout recorded in {} ({}), found {}",
                        self.state_dir.display(),
                        known.join(", "),
                        b.display()
                    )));
                };
                if matches!(j.outcome, Outcome::Running | Outcome::RollingBack) {
                    return Err(Error::Usage(format!(
                        "the last rollout recorded in {} is interrupted: finish it with `certs rollout resume` or `certs rollout rollback` before rolling back an earlier one",
                        self.state_dir.display()
                    )));
                }
                let mut older = older.clone();
                j.archive(&self.state_dir)?;
                older.note(
                    (self.now)(),
                    "rollback of this earlier rollout requested".into(),
                );
                self.save(&older)?;
                j = older;
            }
        }
        verify_backup(&j)?;
        // Recorded before the first file is restored: a rollback killed midway is one (status
        // says so, and `rollback` or `resume` finishes it), never the outcome it undoes.
        if j.outcome != Outcome::RollingBack {
            j.outcome = Outcome::RollingBack;
            j.note((self.now)(), "rollback started".into());
            self.save(&j)?;
        }
        let mut errors = self.unpark(&mut j)?;
        let plan = j.plan.clone();
        let mut touched = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let changed = step.files.iter().any(|&f| !at_old(&plan.files[f]))
                || step
                    .files
                    .iter()
                    .any(|&f| crate::sys::fs::temp_beside(&plan.files[f].target).exists());
            for &f in &step.files {
                let _ = crate::sys::fs::remove_if_present(&crate::sys::fs::temp_beside(
                    &plan.files[f].target,
                ));
            }
            // A component restarted on its new files runs them until restarted on the old
            // ones, even when its files are old again (a rollback killed after restoring them).
            let runs_new = step.restart.is_some() && !step.files.is_empty() && runs_new(j.steps[i]);
            if !changed && !runs_new {
                continue;
            }
            if changed {
                let t = Stopwatch::start();
                self.event(&step.component, "restore", "start", t, None);
                match self.swap_back(&plan, step) {
                    Ok(()) => self.event(&step.component, "restore", "ok", t, None),
                    Err(e) => {
                        self.event(&step.component, "restore", "failed", t, Some(e.clone()));
                        errors.push(format!("{}: {e}", step.component));
                        continue;
                    }
                }
            }
            touched.push(i);
            if !runs_new {
                // Never restarted: it still runs its old certificate; the files are old again.
                j.steps[i] = StepState::RolledBack;
                self.save(&j)?;
            }
        }
        for &i in &touched {
            let step = &plan.steps[i];
            if let (true, Some(restart)) = (runs_new(j.steps[i]), &step.restart) {
                let t = Stopwatch::start();
                self.event(&step.component, "restart", "start", t, None);
                match self.restarter.restart(restart) {
                    Ok(()) => self.event(&step.component, "restart", "ok", t, None),
                    Err(e) => {
                        errors.push(format!("{}: restart failed: {e}", step.component));
                        continue;
                    }
                }
                if let Err(e) = self.gates(&plan, step, false) {
                    errors.push(e);
                }
            }
            j.steps[i] = StepState::RolledBack;
            self.save(&j)?;
        }
        super::membership::not_undone(self, &j);
        let component = touched
            .last()
            .map(|&i| plan.steps[i].component.clone())
            .unwrap_or_default();
        if errors.is_empty() {
            j.outcome = Outcome::RolledBack;
            j.note((self.now)(), "rolled back".into());
            self.save(&j)?;
            Ok(Ended::RolledBack {
                component,
                reason: "rollback requested".into(),
            })
        } else {
            let manual = format!(
                "restore by hand from {} (manifest.json lists every file): {}",
                j.backup.display(),
                errors.join("; ")
            );
            j.outcome = Outcome::RollbackFailed;
            j.note((self.now)(), manual.clone());
            self.save(&j)?;
            Ok(Ended::RollbackFailed {
                component,
                reason: "rollback requested".into(),
                manual,
            })
        }
    }

    fn backup(&self, plan: &Plan, originals: &[(usize, BackupEntry, Vec<u8>)]) -> Result<PathBuf> {
        let stamp = crate::duration::rfc3339((self.now)()).replace([':', '-'], "");
        let dir = self
            .state_dir
            .join("backups")
            .join(format!("{stamp}-{}", std::process::id()));
        crate::sys::fs::create_new_dir(&dir)?;
        let mut entries = Vec::new();
        for (n, f) in plan.files.iter().enumerate() {
            if is_new_file(f) {
                entries.push(BackupEntry {
                    target: f.target.clone(),
                    file: PathBuf::new(),
                    mode: f.mode,
                    uid: None,
                    gid: None,
                    sha256: String::new(),
                    absent: true,
                });
                continue;
            }
            let name = f
                .target
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = dir.join(format!("{n:03}-{name}"));
            // A target that holds the new file already: its original from an earlier backup.
            let (bytes, mode, (uid, gid)) = match originals.iter().find(|(i, ..)| *i == n) {
                Some((_, e, bytes)) => (bytes.clone(), e.mode, (e.uid, e.gid)),
                None => (
                    crate::sys::fs::read_file(&f.target)?,
                    crate::sys::fs::mode(&f.target).unwrap_or(0o600),
                    crate::sys::fs::owner(&f.target).unzip(),
                ),
            };
            crate::sys::fs::write_synced(&file, &bytes, 0o600)?;
            entries.push(BackupEntry {
                target: f.target.clone(),
                file,
                mode,
                uid,
                gid,
                sha256: sha256_hex(&bytes),
                absent: false,
            });
        }
        let manifest =
            serde_json::to_vec_pretty(&entries).map_err(|e| Error::Usage(e.to_string()))?;
        crate::sys::fs::write_synced(&dir.join("manifest.json"), &manifest, 0o600)?;
        crate::sys::fs::sync_dir(&dir)?;
        Ok(dir)
    }

    fn backup_entries(&self) -> Result<Vec<BackupEntry>> {
        let j = Journal::load(&self.state_dir)?.ok_or_else(|| Error::Usage("no journal".into()))?;
        read_backup_manifest(&j.backup)
    }
}

/// Whether a step in this state may have its component running the new files (restarted on
/// them, or rolled forward and back without a restart on the old ones yet).
fn runs_new(state: StepState) -> bool {
    matches!(
        state,
        StepState::Restarting | StepState::Healthy | StepState::Failed
    )
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
fn check_sha(path: &Path, bytes: &[u8], want: &str, what: &str) -> std::result::Result<(), String> {
    let got = sha256_hex(bytes);
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "`{}`: expected {what} with SHA-256 {want}, found SHA-256 {got}",
            path.display()
        ))
    }
}

/// Every bundle file a resumed rollout would still install (its target does not hold it yet)
/// must be the one the bundle recorded; the first that is not refuses, one line.
fn verify_bundle(plan: &Plan) -> Result<()> {
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
fn verify_backup(j: &Journal) -> Result<()> {
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

/// The `manifest.json` of a backup directory.
fn read_backup_manifest(backup: &Path) -> Result<Vec<BackupEntry>> {
    let p = backup.join("manifest.json");
    let bytes = crate::sys::fs::read_file(&p)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Input {
        path: p,
        expected: "a backup manifest".into(),
        found: e.to_string(),
    })
}

/// How the journal notes a step's failure; [`Journal::failure`] reads the reason back.
pub(super) fn failed_prefix(component: &str) -> String {
    format!("{component}: failed: ")
}

/// After a swap: every certificate of the step must pair with the private key of the step (if
/// the step replaces one) — the pair is re-read from disk.
fn verify_pairs(plan: &Plan, step: &Step) -> std::result::Result<(), String> {
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
                return Err(format!(
                    "after the swap `{}` does not pair with the new key",
                    target.display()
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build trees with std::fs
mod tests {
    use super::*;
    use crate::rollout::plan::FileSwap;
    use std::cell::Cell;

    struct OkRestarter;
    impl Restarter for OkRestarter {
        fn restart(&self, _: &Restart) -> std::result::Result<(), String> {
            Ok(())
        }
    }
    struct Health(bool);
    impl Prober for Health {
        fn check(&self, _: &Gate, _: Option<&str>) -> std::result::Result<(), String> {
            if self.0 {
                Ok(())
            } else {
                Err("refused".into())
            }
        }
    }

    /// Two components, three files: a cert+key pair for the first, one file for the second.
    fn tree() -> (tempfile::TempDir, Plan) {
        let dir = tempfile::tempdir().unwrap();
        let (node, bundle) = (dir.path().join("node"), dir.path().join("bundle"));
        std::fs::create_dir_all(&node).unwrap();
        std::fs::create_dir_all(&bundle).unwrap();
        let mut files = Vec::new();
        for name in ["a.crt", "a.key", "b.crt"] {
            let (old, new) = (format!("old {name}\n"), format!("new {name}\n"));
            std::fs::write(node.join(name), &old).unwrap();
            std::fs::write(bundle.join(name), &new).unwrap();
            files.push(FileSwap {
                target: node.join(name),
                source: bundle.join(name),
                kind: "other".into(),
                role: "unknown".into(),
                ca: "ca".into(),
                mode: 0o600,
                old_sha256: sha256_hex(old.as_bytes()),
                new_sha256: sha256_hex(new.as_bytes()),
                old_serial: None,
                new_serial: None,
                sans: vec![],
                link: None,
            });
        }
        let gate = Gate {
            url: "https://127.0.0.1:1".into(),
            path: None,
            expect: None,
            trust: crate::rollout::plan::Trust::Ca("ca".into()),
            client: None,
            serves: None,
            origin: "test".into(),
        };
        let step = |name: &str, files: Vec<usize>| Step {
            component: name.into(),
            kind: name.into(),
            restart: Some(Restart::Command("true".into())),
            files,
            reads: vec![],
            gates: vec![gate.clone()],
            note: None,
            from: "test".into(),
        };
        let plan = Plan {
            bundle,
            ca: "ca".into(),
            profile: "test".into(),
            files,
            steps: vec![step("etcd", vec![0, 1]), step("kube-apiserver", vec![2])],
            etcd: None,
        };
        (dir, plan)
    }

    fn digest(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), sha256_hex(&std::fs::read(&p).unwrap())))
            .collect();
        out.sort();
        out
    }

    fn run(
        plan: &Plan,
        state: &Path,
        healthy: bool,
        fail_at: Option<usize>,
    ) -> (Result<Ended>, usize) {
        let calls = Cell::new(0);
        // File actions and restarts only: an error injected at a journal write is no rollback
        // path (the kill tests stop the run there instead).
        let fault = |label: &str| {
            if label == "journal" {
                return Ok(());
            }
            let n = calls.get();
            calls.set(n + 1);
            if Some(n) == fail_at {
                Err(format!("injected at {n}"))
            } else {
                Ok(())
            }
        };
        let prober = Health(healthy);
        let mut sink = |_: &Event| {};
        let mut ex = Executor {
            state_dir: state.to_path_buf(),
            restarter: &OkRestarter,
            prober: &prober,
            timing: Timing {
                deadline: Duration::from_millis(50),
                interval: Duration::from_millis(10),
            },
            now: &|| 1_800_000_000,
            on_event: &mut sink,
            fault: &fault,
            etcd: &crate::rollout::membership::NoEtcd,
        };
        let ended = ex.apply(plan);
        (ended, calls.get())
    }

    fn rollback(state: &Path) -> Ended {
        let mut sink = |_: &Event| {};
        let mut ex = Executor {
            state_dir: state.to_path_buf(),
            restarter: &OkRestarter,
            prober: &Health(true),
            timing: Timing {
                deadline: Duration::from_millis(50),
                interval: Duration::from_millis(10),
            },
            now: &|| 1_800_000_000,
            on_event: &mut sink,
            fault: &|_| Ok(()),
            etcd: &crate::rollout::membership::NoEtcd,
        };
        ex.rollback(None).unwrap()
    }

    #[test]
    fn happy_path_swaps_everything_and_keeps_a_backup() {
        let (dir, plan) = tree();
        let state = dir.path().join("state");
        let (ended, points) = run(&plan, &state, true, None);
        assert_eq!(ended.unwrap(), Ended::Done);
        assert!(points >= 5, "{points} fault points");
        for f in &plan.files {
            assert_eq!(current_sha(&f.target).unwrap(), f.new_sha256);
        }
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(j.outcome, Outcome::Done);
        assert!(j.backup.join("manifest.json").exists());
        // The backup restores the original tree.
        assert_eq!(
            rollback(&state),
            Ended::RolledBack {
                component: "kube-apiserver".into(),
                reason: "rollback requested".into()
            }
        );
        for f in &plan.files {
            assert_eq!(current_sha(&f.target).unwrap(), f.old_sha256);
        }
    }

    #[test]
    fn a_fault_at_every_mutating_step_rolls_back_to_the_identical_tree() {
        let (probe_dir, probe_plan) = tree();
        let (_, points) = run(&probe_plan, &probe_dir.path().join("state"), true, None);
        for k in 0..points {
            let (dir, plan) = tree();
            let node = dir.path().join("node");
            let before = digest(&node);
            let state = dir.path().join("state");
            let (ended, _) = run(&plan, &state, true, Some(k));
            let ended = ended.unwrap();
            assert!(
                matches!(ended, Ended::RolledBack { .. }),
                "fault {k}: {ended:?}"
            );
            rollback(&state);
            assert_eq!(
                digest(&node),
                before,
                "fault {k}: tree differs after rollback"
            );
        }
    }

    #[test]
    fn an_unhealthy_component_is_restored_and_the_rollout_stops() {
        let (dir, plan) = tree();
        let node = dir.path().join("node");
        let before = digest(&node);
        let state = dir.path().join("state");
        // Unhealthy on the new and on the old certificate: the rollback cannot prove health.
        let (ended, _) = run(&plan, &state, false, None);
        match ended.unwrap() {
            Ended::RollbackFailed {
                component, manual, ..
            } => {
                assert_eq!(component, "etcd");
                assert!(manual.contains("backups"), "{manual}");
            }
            other => panic!("{other:?}"),
        }
        // The files are restored even so, and the second component was never touched.
        assert_eq!(digest(&node), before);
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(j.steps, vec![StepState::Failed, StepState::Pending]);
    }

    #[test]
    fn a_changed_target_stops_before_anything_is_written() {
        let (dir, plan) = tree();
        std::fs::write(&plan.files[2].target, "edited by hand").unwrap();
        let state = dir.path().join("state");
        let (ended, calls) = run(&plan, &state, true, None);
        assert!(ended.unwrap_err().to_string().contains("changed since"));
        assert_eq!(calls, 0);
        assert!(!state.exists());
    }

    /// `tree()` with `a.key` a file the bundle adds (`certs issue`): nothing at its target,
    /// `old_sha256` empty.
    fn tree_with_a_new_file() -> (tempfile::TempDir, Plan) {
        let (dir, mut plan) = tree();
        std::fs::remove_file(&plan.files[1].target).unwrap();
        plan.files[1].old_sha256 = String::new();
        (dir, plan)
    }

    #[test]
    fn a_new_file_is_installed_and_a_rollback_removes_it() {
        let (dir, plan) = tree_with_a_new_file();
        let new = &plan.files[1].target;
        let state = dir.path().join("state");
        let (ended, _) = run(&plan, &state, true, None);
        assert_eq!(ended.unwrap(), Ended::Done);
        assert_eq!(current_sha(new).unwrap(), plan.files[1].new_sha256);
        // The backup records that nothing was there.
        let j = Journal::load(&state).unwrap().unwrap();
        let manifest = std::fs::read(j.backup.join("manifest.json")).unwrap();
        let entries: Vec<BackupEntry> = serde_json::from_slice(&manifest).unwrap();
        assert!(entries.iter().any(|e| &e.target == new && e.absent));
        assert!(matches!(rollback(&state), Ended::RolledBack { .. }));
        assert!(crate::sys::fs::is_absent(new));
        assert_eq!(
            current_sha(&plan.files[0].target).unwrap(),
            plan.files[0].old_sha256
        );

        // A fault anywhere: the rollback leaves the tree as it was, without the new file.
        let (probe_dir, probe_plan) = tree_with_a_new_file();
        let (_, points) = run(&probe_plan, &probe_dir.path().join("state"), true, None);
        for k in 0..points {
            let (dir, plan) = tree_with_a_new_file();
            let node = dir.path().join("node");
            let before = digest(&node);
            let state = dir.path().join("state");
            let (ended, _) = run(&plan, &state, true, Some(k));
            assert!(
                matches!(ended.unwrap(), Ended::RolledBack { .. }),
                "fault {k}"
            );
            rollback(&state);
            assert_eq!(
                digest(&node),
                before,
                "fault {k}: tree differs after rollback"
            );
        }

        // Something already at the new file's target: refused before anything is written.
        let (dir, plan) = tree_with_a_new_file();
        std::fs::write(&plan.files[1].target, "someone else's").unwrap();
        let state = dir.path().join("state");
        let (ended, calls) = run(&plan, &state, true, None);
        let err = ended.unwrap_err().to_string();
        assert!(err.contains("the bundle adds this file"), "{err}");
        assert_eq!(calls, 0);
        assert!(!state.exists());
    }

    struct FnRestarter<F>(F);
    impl<F: Fn(&Restart) -> std::result::Result<(), String>> Restarter for FnRestarter<F> {
        fn restart(&self, r: &Restart) -> std::result::Result<(), String> {
            (self.0)(r)
        }
    }
    struct FnProber<F>(F);
    impl<F: Fn(&Gate, Option<&str>) -> std::result::Result<(), String>> Prober for FnProber<F> {
        fn check(&self, g: &Gate, serial: Option<&str>) -> std::result::Result<(), String> {
            (self.0)(g, serial)
        }
    }

    /// Runs `f` on an executor over `state` with these side effects; returns its result and
    /// the events.
    fn with<T>(
        state: &Path,
        restarter: &dyn Restarter,
        prober: &dyn Prober,
        f: impl FnOnce(&mut Executor) -> T,
    ) -> (T, Vec<Event>) {
        let mut events = Vec::new();
        let mut sink = |e: &Event| events.push(e.clone());
        let mut ex = Executor {
            state_dir: state.to_path_buf(),
            restarter,
            prober,
            timing: Timing {
                deadline: Duration::from_millis(50),
                interval: Duration::from_millis(10),
            },
            now: &|| 1_800_000_000,
            on_event: &mut sink,
            fault: &|_| Ok(()),
            etcd: &crate::rollout::membership::NoEtcd,
        };
        let out = f(&mut ex);
        (out, events)
    }

    /// The process dies inside `f` (a panic stands for SIGKILL: nothing after it runs, the
    /// journal and the files stay as they were at that instant).
    fn killed_during(f: impl FnOnce()) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        assert!(r.is_err(), "expected the simulated crash");
    }

    fn is_root() -> bool {
        crate::sys::fs::owner(Path::new("/proc/self")).is_some_and(|(uid, _)| uid == 0)
    }

    fn meta(p: &Path) -> (u32, u32, u32) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    }

    #[test]
    fn owner_group_and_mode_survive_the_swap_and_the_rollback() {
        use std::os::unix::fs::PermissionsExt;
        if !is_root() {
            eprintln!("skipped: giving files another owner needs root");
            return;
        }
        let (dir, mut plan) = tree();
        let (a, b) = (plan.files[0].target.clone(), plan.files[2].target.clone());
        // A 0640 file readable by a group (root:1234), and a 0644 one owned by a service user
        // (1235:1236) that the bundle installs 0600.
        std::fs::set_permissions(&a, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&a, Some(0), Some(1234)).unwrap();
        plan.files[0].mode = 0o640;
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::chown(&b, Some(1235), Some(1236)).unwrap();
        plan.files[2].mode = 0o600;
        let state = dir.path().join("state");
        assert_eq!(run(&plan, &state, true, None).0.unwrap(), Ended::Done);
        assert_eq!(current_sha(&a).unwrap(), plan.files[0].new_sha256);
        assert_eq!(meta(&a), (0, 1234, 0o640));
        assert_eq!(
            meta(&b),
            (1235, 1236, 0o600),
            "owner kept, the bundle's mode"
        );
        assert!(matches!(rollback(&state), Ended::RolledBack { .. }));
        assert_eq!(current_sha(&a).unwrap(), plan.files[0].old_sha256);
        assert_eq!(current_sha(&b).unwrap(), plan.files[2].old_sha256);
        assert_eq!(meta(&a), (0, 1234, 0o640));
        assert_eq!(meta(&b), (1235, 1236, 0o644), "the recorded owner and mode");
    }

    /// `tree()` with the first component a static pod, and the run killed while its manifest
    /// is parked (moved out by the restart that never finished).
    fn killed_while_parked() -> (tempfile::TempDir, Plan, PathBuf, Vec<u8>) {
        let (dir, mut plan) = tree();
        let manifest = dir.path().join("etc/kubernetes/manifests/etcd.yaml");
        std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        let bytes = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n".to_vec();
        std::fs::write(&manifest, &bytes).unwrap();
        plan.steps[0].restart = Some(Restart::StaticPod(manifest.clone()));
        let state = dir.path().join("state");
        let park = FnRestarter(|r: &Restart| {
            if let Restart::StaticPod(m) = r {
                crate::sys::fs::move_synced(m, &super::super::probe::parked_path(m)).unwrap();
            }
            panic!("killed while the manifest is parked");
        });
        let ok = FnProber(|_: &Gate, _: Option<&str>| Ok(()));
        killed_during(|| {
            let _ = with(&state, &park, &ok, |ex| ex.apply(&plan));
        });
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(j.outcome, Outcome::Running);
        assert_eq!(j.steps[0], StepState::Restarting);
        assert!(!manifest.exists());
        assert!(super::super::probe::parked_path(&manifest).exists());
        (dir, plan, manifest, bytes)
    }

    #[test]
    fn resume_and_rollback_first_put_a_parked_manifest_back() {
        for finish in ["resume", "rollback"] {
            let (dir, plan, manifest, bytes) = killed_while_parked();
            let state = dir.path().join("state");
            // Every restart afterwards must find the manifest in place.
            let seen = std::cell::RefCell::new(Vec::new());
            let restarter = FnRestarter(|_: &Restart| {
                seen.borrow_mut().push(manifest.exists());
                Ok(())
            });
            let ok = FnProber(|_: &Gate, _: Option<&str>| Ok(()));
            let (ended, events) = with(&state, &restarter, &ok, |ex| match finish {
                "resume" => ex.resume(),
                _ => ex.rollback(None),
            });
            let ended = ended.unwrap();
            assert_eq!(std::fs::read(&manifest).unwrap(), bytes, "{finish}");
            assert!(!super::super::probe::parked_path(&manifest).exists());
            assert!(
                !seen.borrow().is_empty() && seen.borrow().iter().all(|&b| b),
                "{finish}"
            );
            // The move back is the first thing done, evented and noted.
            assert_eq!(
                (events[0].action.as_str(), events[0].status),
                ("unpark", "start"),
                "{finish}: {events:?}"
            );
            assert_eq!(
                (events[1].action.as_str(), events[1].status),
                ("unpark", "ok")
            );
            let j = Journal::load(&state).unwrap().unwrap();
            assert!(
                j.log
                    .iter()
                    .any(|e| e.message.starts_with("etcd: put back")),
                "{:?}",
                j.log
            );
            let want = if finish == "resume" {
                assert_eq!(ended, Ended::Done);
                |f: &FileSwap| f.new_sha256.clone()
            } else {
                assert!(matches!(ended, Ended::RolledBack { .. }), "{ended:?}");
                |f: &FileSwap| f.old_sha256.clone()
            };
            for f in &plan.files {
                assert_eq!(current_sha(&f.target).unwrap(), want(f), "{finish}");
            }
        }
    }

    #[test]
    fn resume_after_a_crash_during_a_rollback_finishes_the_rollback() {
        let (dir, mut plan) = tree();
        plan.files[0].old_serial = Some("01".into());
        plan.files[0].new_serial = Some("02".into());
        plan.steps[0].gates[0].serves = Some(0);
        let state = dir.path().join("state");
        // etcd never becomes healthy on the new certificate; the run dies in the rollback's
        // restart, after the step was recorded Failed.
        let calls = Cell::new(0);
        let dies_second_time = FnRestarter(|_: &Restart| {
            calls.set(calls.get() + 1);
            if calls.get() == 2 {
                panic!("killed during the rollback");
            }
            Ok(())
        });
        let old_only = FnProber(|_: &Gate, serial: Option<&str>| match serial {
            Some("01") => Ok(()),
            other => Err(format!("serves serial 01, expected {other:?}")),
        });
        killed_during(|| {
            let _ = with(&state, &dies_second_time, &old_only, |ex| ex.apply(&plan));
        });
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(
            (j.outcome, j.steps[0]),
            (Outcome::Running, StepState::Failed)
        );
        // As if the restore was cut short too: the key is the new one again.
        std::fs::copy(&plan.files[1].source, &plan.files[1].target).unwrap();

        let restarts = Cell::new(0);
        let restarter = FnRestarter(|_: &Restart| {
            restarts.set(restarts.get() + 1);
            Ok(())
        });
        let asked = std::cell::RefCell::new(Vec::new());
        let prober = FnProber(|_: &Gate, serial: Option<&str>| {
            asked.borrow_mut().push(serial.map(String::from));
            match serial {
                Some("01") => Ok(()),
                _ => Err("not the old serial".into()),
            }
        });
        let (ended, _) = with(&state, &restarter, &prober, |ex| ex.resume());
        match ended.unwrap() {
            Ended::RolledBack { component, reason } => {
                assert_eq!(component, "etcd");
                assert!(reason.contains("not healthy on the new"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Restored, restarted once, gated on the old serial only; nothing ran forward.
        for f in &plan.files {
            assert_eq!(current_sha(&f.target).unwrap(), f.old_sha256);
        }
        assert_eq!(restarts.get(), 1);
        assert_eq!(*asked.borrow(), vec![Some("01".to_string())]);
        let j = Journal::load(&state).unwrap().unwrap();
        assert_eq!(j.outcome, Outcome::RolledBack);
        assert_eq!(j.steps, vec![StepState::RolledBack, StepState::Pending]);
    }

    #[test]
    fn resume_after_a_failed_rollback_that_cannot_be_proven_ends_rollback_failed() {
        let (dir, plan) = tree();
        let state = dir.path().join("state");
        let calls = Cell::new(0);
        let dies_second_time = FnRestarter(|_: &Restart| {
            calls.set(calls.get() + 1);
            if calls.get() == 2 {
                panic!("killed during the rollback");
            }
            Ok(())
        });
        let down = FnProber(|_: &Gate, _: Option<&str>| Err("refused".into()));
        killed_during(|| {
            let _ = with(&state, &dies_second_time, &down, |ex| ex.apply(&plan));
        });
        let ok = FnRestarter(|_: &Restart| Ok(()));
        let (ended, _) = with(&state, &ok, &down, |ex| ex.resume());
        assert!(
            matches!(&ended, Ok(Ended::RollbackFailed { component, .. }) if component == "etcd"),
            "{ended:?}"
        );
        for f in &plan.files {
            assert_eq!(current_sha(&f.target).unwrap(), f.old_sha256);
        }
    }
}
