//! Executing a plan: back up, swap atomically, restart one component at a time, gate on health
//! (the endpoint must serve the NEW serial), and roll back on failure — with a journal written
//! around every mutating action so a killed run can be resumed or rolled back.
//!
//! Side effects on components go through two small traits with one real implementation each
//! ([`super::restart`], [`super::probe`]); files are real files, touched only through
//! [`crate::sys::fs`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::journal::{Journal, Outcome, StepState};
use super::plan::{FileSwap, Gate, Plan};
use super::profile::Restart;
use crate::error::Result;
use crate::pki::cert::sha256_hex;
use crate::rollout;
use crate::sys::clock::Stopwatch;

mod backup;
mod check;
mod rollback;
mod swap;
#[cfg(test)]
mod tests;

pub use check::{contradictions, held, Held};
use check::{verify_backup, verify_bundle, verify_hashes};

/// Restarts a component.
pub trait Restarter {
    fn restart(&self, restart: &Restart) -> std::result::Result<(), rollout::Error>;
}

/// Checks one health gate once: Ok when the endpoint is healthy and serves `serial`.
pub trait Prober {
    fn check(&self, gate: &Gate, serial: Option<&str>) -> std::result::Result<(), rollout::Error>;
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
    pub fault: &'a dyn Fn(&str) -> std::result::Result<(), rollout::Error>,
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

/// The SHA-256 of a target, backup or bundle file: a regular file of bounded size only (a FIFO
/// is never opened, a link to a device never read).
pub(super) fn current_sha(path: &Path) -> Option<String> {
    crate::sys::fs::read_opt_bounded(path).map(|b| sha256_hex(&b))
}

/// A file the bundle adds (`certs issue`: bundle.json's `old_sha256` is empty): before the
/// rollout nothing is at its target, and a rollback removes it again.
pub(super) fn is_new_file(f: &FileSwap) -> bool {
    f.old_sha256.is_empty()
}

/// Whether a target is as it was before the rollout: the old file, or for a new file, nothing.
pub(super) fn at_old(f: &FileSwap) -> bool {
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
        (self.fault)("journal")?;
        j.save(&self.state_dir)
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
                return Err(rollout::Error::Interrupted {
                    journal: super::journal::path(&self.state_dir),
                }
                .into());
            }
        }
        verify_hashes(plan)?;
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

    /// Continues an interrupted rollout from its first unfinished step.
    pub fn resume(&mut self) -> Result<Ended> {
        let mut j = Journal::load(&self.state_dir)?
            .ok_or(rollout::Error::NothingRecorded { to: "resume" })?;
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
            return Err(rollout::Error::StillParked { stuck }.into());
        }
        if j.outcome != Outcome::Running {
            return Err(rollout::Error::NotInterrupted { outcome: j.outcome }.into());
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

    pub(super) fn run_from(&mut self, j: &mut Journal, first: usize) -> Result<Ended> {
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
                    let ended = self.rollback_step(j, i, step, &reason.to_string())?;
                    return Ok(ended);
                }
            }
        }
        j.outcome = Outcome::Done;
        j.note((self.now)(), "done".into());
        self.save(j)?;
        Ok(Ended::Done)
    }
}

/// How the journal notes a step's failure; [`Journal::failure`] reads the reason back.
pub(super) fn failed_prefix(component: &str) -> String {
    format!("{component}: failed: ")
}
