//! Executing a plan: back up, swap atomically, restart one component at a time, gate on health
//! (the endpoint must serve the NEW serial), and roll back on failure — with a journal written
//! around every mutating action so a killed run can be resumed or rolled back.
//!
//! Side effects on components go through two small traits with one real implementation each
//! ([`super::probe`]); files are real files, touched only through [`crate::sys::fs`].

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::journal::{Journal, Outcome, StepState};
use super::plan::{Gate, Plan, Step};
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
}

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Done,
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
}

#[derive(Debug, Serialize, Deserialize)]
struct BackupEntry {
    target: PathBuf,
    file: PathBuf,
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
    sha256: String,
}

fn current_sha(path: &Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| sha256_hex(&b))
}

impl Executor<'_> {
    fn event(
        &mut self,
        component: &str,
        action: &str,
        status: &'static str,
        started: Instant,
        detail: Option<String>,
    ) {
        let e = Event {
            component: component.into(),
            action: action.into(),
            status,
            elapsed_ms: started.elapsed().as_millis(),
            detail,
        };
        (self.on_event)(&e);
    }

    fn save(&self, j: &Journal) -> Result<()> {
        j.save(&self.state_dir)
    }

    /// Checks the tree against the plan before anything changes: every bundle file intact, every
    /// target still the file the bundle was made from (or already the new one).
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

    /// Runs a plan from the start.
    pub fn apply(&mut self, plan: &Plan) -> Result<Ended> {
        if let Some(j) = Journal::load(&self.state_dir)? {
            if j.outcome == Outcome::Running {
                return Err(Error::Usage(format!(
                    "an interrupted rollout is recorded in {}: run `certs rollout status`, then `resume` or `rollback`",
                    super::journal::path(&self.state_dir).display()
                )));
            }
        }
        Self::preflight(plan)?;
        let backup = self.backup(plan)?;
        let mut j = Journal::new(plan.clone(), backup);
        j.note((self.now)(), "started".into());
        self.save(&j)?;
        self.run_from(&mut j, 0)
    }

    /// Continues an interrupted rollout from its first unfinished step.
    pub fn resume(&mut self) -> Result<Ended> {
        let mut j = Journal::load(&self.state_dir)?
            .ok_or_else(|| Error::Usage("no rollout recorded to resume".into()))?;
        if j.outcome != Outcome::Running {
            return Err(Error::Usage(format!(
                "the recorded rollout is not interrupted (it ended: {:?}); nothing to resume",
                j.outcome
            )));
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

    fn run_from(&mut self, j: &mut Journal, first: usize) -> Result<Ended> {
        let plan = j.plan.clone();
        for (i, step) in plan.steps.iter().enumerate().skip(first) {
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
        let t = Instant::now();
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
            let t = Instant::now();
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
        for &fi in &step.files {
            let f = &plan.files[fi];
            let want = if to_new { &f.new_sha256 } else { &f.old_sha256 };
            if current_sha(&f.target).as_deref() == Some(want.as_str()) {
                continue;
            }
            let (bytes, mode) = if to_new {
                (
                    std::fs::read(&f.source)
                        .map_err(|e| format!("cannot read `{}`: {e}", f.source.display()))?,
                    f.mode,
                )
            } else {
                let b = backup
                    .iter()
                    .find(|b| b.target == f.target)
                    .ok_or_else(|| format!("no backup of `{}`", f.target.display()))?;
                (
                    std::fs::read(&b.file)
                        .map_err(|e| format!("cannot read backup `{}`: {e}", b.file.display()))?,
                    b.mode,
                )
            };
            let tmp = crate::sys::fs::temp_beside(&f.target);
            (self.fault)(&format!("stage {}", f.target.display()))?;
            crate::sys::fs::write_synced(&tmp, &bytes, mode).map_err(|e| e.to_string())?;
            staged.push((tmp, f.target.clone()));
        }
        // All temps are written: the renames follow back to back, so a certificate and its key
        // disagree only between two renames.
        for (tmp, target) in &staged {
            (self.fault)(&format!("rename {}", target.display()))?;
            crate::sys::fs::commit_temp(tmp, target).map_err(|e| e.to_string())?;
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
            let t = Instant::now();
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
                std::thread::sleep(self.timing.interval);
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
            format!("{}: failed: {reason}", step.component),
        );
        self.save(j)?;
        let plan = j.plan.clone();
        let mut errors = Vec::new();
        let t = Instant::now();
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
            "restore by hand from {}: copy each file listed in its manifest.json back to its target, then restart {}; rollback errors: {}",
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
        };
        quiet.swap(plan, step, false)
    }

    /// Restores every file of the recorded rollout (or of `backup`) that differs from its backup,
    /// then restarts the affected components in order and waits for the old certificates.
    pub fn rollback(&mut self, backup: Option<&Path>) -> Result<Ended> {
        let mut j = Journal::load(&self.state_dir)?
            .ok_or_else(|| Error::Usage("no rollout recorded to roll back".into()))?;
        if let Some(b) = backup {
            if std::path::absolute(b).ok() != std::path::absolute(&j.backup).ok() {
                return Err(Error::Usage(format!(
                    "expected the backup of the recorded rollout ({}), found {}",
                    j.backup.display(),
                    b.display()
                )));
            }
        }
        let plan = j.plan.clone();
        let mut errors = Vec::new();
        let mut touched = Vec::new();
        for (i, step) in plan.steps.iter().enumerate() {
            let changed = step.files.iter().any(|&f| {
                current_sha(&plan.files[f].target).as_deref()
                    != Some(plan.files[f].old_sha256.as_str())
            }) || step
                .files
                .iter()
                .any(|&f| crate::sys::fs::temp_beside(&plan.files[f].target).exists());
            for &f in &step.files {
                let _ = std::fs::remove_file(crate::sys::fs::temp_beside(&plan.files[f].target));
            }
            if !changed {
                continue;
            }
            let t = Instant::now();
            self.event(&step.component, "restore", "start", t, None);
            match self.swap_back(&plan, step) {
                Ok(()) => {
                    self.event(&step.component, "restore", "ok", t, None);
                    touched.push(i);
                }
                Err(e) => {
                    self.event(&step.component, "restore", "failed", t, Some(e.clone()));
                    errors.push(format!("{}: {e}", step.component));
                }
            }
        }
        for &i in &touched {
            let step = &plan.steps[i];
            // A component that never restarted still runs its old certificate.
            let restarted = matches!(
                j.steps[i],
                StepState::Restarting | StepState::Healthy | StepState::Failed
            );
            if let (true, Some(restart)) = (restarted, &step.restart) {
                let t = Instant::now();
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
        }
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

    fn backup(&self, plan: &Plan) -> Result<PathBuf> {
        let stamp = crate::duration::rfc3339((self.now)()).replace([':', '-'], "");
        let dir = self
            .state_dir
            .join("backups")
            .join(format!("{stamp}-{}", std::process::id()));
        crate::sys::fs::create_new_dir(&dir)?;
        let mut entries = Vec::new();
        for (n, f) in plan.files.iter().enumerate() {
            let bytes = crate::sys::fs::read_file(&f.target)?;
            let name = f
                .target
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = dir.join(format!("{n:03}-{name}"));
            let mode = crate::sys::fs::mode(&f.target).unwrap_or(0o600);
            crate::sys::fs::write_synced(&file, &bytes, 0o600)?;
            let (uid, gid) = crate::sys::fs::owner(&f.target).unzip();
            entries.push(BackupEntry {
                target: f.target.clone(),
                file,
                mode,
                uid,
                gid,
                sha256: sha256_hex(&bytes),
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
        let p = j.backup.join("manifest.json");
        let bytes = crate::sys::fs::read_file(&p)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Input {
            path: p,
            expected: "a backup manifest".into(),
            found: e.to_string(),
        })
    }
}

/// After a swap: every certificate of the step must pair with the private key of the step (if
/// the step replaces one) — the pair is re-read from disk.
fn verify_pairs(plan: &Plan, step: &Step) -> std::result::Result<(), String> {
    use crate::pki::decode::{decode, Item};
    let read = |p: &Path| {
        std::fs::read(p)
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
            gates: vec![gate.clone()],
        };
        let plan = Plan {
            bundle,
            ca: "ca".into(),
            profile: "test".into(),
            files,
            steps: vec![step("etcd", vec![0, 1]), step("kube-apiserver", vec![2])],
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
        let fault = |_: &str| {
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
}
