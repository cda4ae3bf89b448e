//! Going back: a failed step restored and restarted on its old files, a whole rollout rolled
//! back on request, and static pod manifests a stopped run left parked put back.

use std::path::Path;

use super::check::verify_backup;
use super::{at_old, failed_prefix, Ended, Executor};
use crate::error::Result;
use crate::rollout;
use crate::rollout::journal::{Journal, Outcome, StepState};
use crate::rollout::plan::{Plan, Step};
use crate::rollout::profile::Restart;
use crate::sys::clock::Stopwatch;

impl Executor<'_> {
    /// A run stopped while a static pod was parked (its manifest beside the manifests directory,
    /// not in it): put every such manifest back before anything else, with a journal note and
    /// an event. Returns what could not be put back, each with what to do by hand.
    pub(super) fn unpark(&mut self, j: &mut Journal) -> Result<Vec<String>> {
        let mut stuck = Vec::new();
        let mut moved = false;
        for step in &j.plan.steps.clone() {
            let Some(Restart::StaticPod(manifest)) = &step.restart else {
                continue;
            };
            let parked = crate::rollout::restart::parked_path(manifest);
            let missing = crate::sys::fs::is_absent(manifest);
            if !missing || !crate::sys::fs::is_file(&parked) {
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

    /// A step failed: restore its files, restart it on them, wait until it is healthy on the old
    /// certificate, and stop.
    pub(super) fn rollback_step(
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
    pub(super) fn restore_step(
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
            errors.push(e.to_string());
        } else if let Some(restart) = &step.restart {
            if let Err(e) = self.restarter.restart(restart) {
                errors.push(format!("restart on the old files failed: {e}"));
            } else if let Err(e) = self.gates(&plan, step, false) {
                errors.push(e.to_string());
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
    pub(super) fn swap_back(
        &self,
        plan: &Plan,
        step: &Step,
    ) -> std::result::Result<(), crate::rollout::Error> {
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
            .ok_or(rollout::Error::NothingRecorded { to: "roll back" })?;
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
                    return Err(rollout::Error::UnknownBackup {
                        state_dir: self.state_dir.clone(),
                        known,
                        found: b.to_path_buf(),
                    }
                    .into());
                };
                if matches!(j.outcome, Outcome::Running | Outcome::RollingBack) {
                    return Err(rollout::Error::LastInterrupted {
                        state_dir: self.state_dir.clone(),
                    }
                    .into());
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
                || step.files.iter().any(|&f| {
                    crate::sys::fs::exists(&crate::sys::fs::temp_beside(&plan.files[f].target))
                });
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
                        self.event(&step.component, "restore", "failed", t, Some(e.to_string()));
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
                    errors.push(e.to_string());
                }
            }
            j.steps[i] = StepState::RolledBack;
            self.save(&j)?;
        }
        crate::rollout::membership::not_undone(self, &j);
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
}

/// Whether a step in this state may have its component running the new files (restarted on
/// them, or rolled forward and back without a restart on the old ones yet).
pub(super) fn runs_new(state: StepState) -> bool {
    matches!(
        state,
        StepState::Restarting | StepState::Healthy | StepState::Failed
    )
}
