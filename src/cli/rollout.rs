//! `certs rollout`: adapters over [`crate::rollout`] — build the plan, run the executor with
//! the real restarter and prober, print progress, map outcomes to exit codes 0/3/4.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::args::{PlanOutput, RolloutCommand, RolloutPlanArgs, RolloutRunArgs};
use crate::error::{exit, Error, Result};
use crate::rollout::exec::{Ended, Event, Executor, Timing};
use crate::rollout::journal::Journal;
use crate::rollout::plan::{self, Plan};
use crate::rollout::probe::{SystemRestarter, TlsProber};
use crate::rollout::profile::{self, Profile};

/// Rolled back cleanly after a failure.
pub const ROLLED_BACK: u8 = 3;
/// Failed, and the rollback failed too: manual action needed.
pub const ROLLBACK_FAILED: u8 = 4;

pub fn run(cmd: &RolloutCommand) -> Result<u8> {
    match cmd {
        RolloutCommand::Plan(a) => {
            let plan = build_plan(a)?;
            print_plan(&plan, a.output)?;
            Ok(exit::OK)
        }
        RolloutCommand::Apply(a) => {
            let plan = build_plan(&a.plan)?;
            if a.dry_run {
                print_plan(&plan, a.plan.output)?;
                return Ok(exit::OK);
            }
            let _lock = lock(&a.run)?;
            let ended = with_executor(&a.run, a.plan.output, |ex| ex.apply(&plan))?;
            finish(ended, a.plan.output)
        }
        RolloutCommand::Status(a) => status(&a.state.state_dir, a.output),
        RolloutCommand::Resume(a) => {
            let _lock = lock(&a.run)?;
            let ended = with_executor(&a.run, a.output, |ex| ex.resume())?;
            finish(ended, a.output)
        }
        RolloutCommand::Rollback(a) => {
            let _lock = lock(&a.run)?;
            let ended = with_executor(&a.run, a.output, |ex| ex.rollback(a.backup.as_deref()))?;
            match ended {
                Ended::RolledBack { .. } => {
                    say(
                        a.output,
                        "rolled back: every file is the backed-up one again",
                    )?;
                    Ok(exit::OK)
                }
                other => finish(other, a.output),
            }
        }
    }
}

fn build_plan(a: &RolloutPlanArgs) -> Result<Plan> {
    let manifest = plan::read_bundle(&a.bundle)?;
    let mut profile: Profile = match &a.profile {
        Some(p) if Path::new(p).is_file() => {
            let bytes = crate::sys::fs::read_file(Path::new(p))?;
            profile::parse(Path::new(p), &String::from_utf8_lossy(&bytes)).map_err(Error::Usage)?
        }
        Some(name) => profile::builtin(name)
            .map_err(Error::Usage)?
            .rerooted(&a.root),
        None => {
            // Detect from the targets as they are on the node (strip --root first).
            let targets: Vec<_> = manifest
                .files
                .iter()
                .map(|f| match f.target.strip_prefix(&a.root) {
                    Ok(rel) if a.root != Path::new("/") => Path::new("/").join(rel),
                    _ => f.target.clone(),
                })
                .collect();
            let name = profile::detect(&targets).map_err(Error::Usage)?;
            profile::builtin(name)
                .map_err(Error::Usage)?
                .rerooted(&a.root)
        }
    };
    for r in &a.restart_cmd {
        profile.set_restart(r).map_err(Error::Usage)?;
    }
    for h in &a.health {
        profile.set_health(h).map_err(Error::Usage)?;
    }
    // Only components that will run need their addresses; a failed lookup says how to override.
    profile.resolve(&a.root);
    plan::build(&a.bundle, &manifest, &profile)
}

fn print_plan(plan: &Plan, output: PlanOutput) -> Result<()> {
    let text = match output {
        PlanOutput::Json => {
            serde_json::to_string_pretty(plan).map_err(|e| Error::Usage(e.to_string()))?
        }
        PlanOutput::Text => plan.render(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", text.trim_end()).map_err(Error::Output)
}

fn duration(text: &str) -> Result<Duration> {
    crate::duration::parse(text).map_err(Error::Usage)
}

fn lock(a: &RolloutRunArgs) -> Result<crate::sys::fs::Lock> {
    crate::sys::fs::create_new_dir(&a.state.state_dir).or_else(|e| {
        if a.state.state_dir.is_dir() {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    crate::sys::fs::lock(&a.state.state_dir.join("lock"))
}

fn with_executor(
    a: &RolloutRunArgs,
    output: PlanOutput,
    f: impl FnOnce(&mut Executor) -> Result<Ended>,
) -> Result<Ended> {
    let timing = Timing {
        deadline: duration(&a.health_timeout)?,
        interval: duration(&a.health_interval)?,
    };
    let restarter = SystemRestarter {
        timeout: duration(&a.restart_timeout)?,
        park_dir: a.state.state_dir.join("parked-manifests"),
        park_for: duration(&a.park)?,
    };
    let prober = TlsProber {
        timeout: Duration::from_secs(5).min(timing.deadline.max(Duration::from_secs(1))),
    };
    let mut print = |e: &Event| print_event(e, output);
    let mut ex = Executor {
        state_dir: a.state.state_dir.clone(),
        restarter: &restarter,
        prober: &prober,
        timing,
        now: &crate::sys::clock::now,
        on_event: &mut print,
        fault: &|_| Ok(()),
    };
    f(&mut ex)
}

fn print_event(e: &Event, output: PlanOutput) {
    let mut out = std::io::stdout().lock();
    let _ = match output {
        PlanOutput::Json => serde_json::to_string(e)
            .map(|line| writeln!(out, "{line}"))
            .unwrap_or(Ok(())),
        PlanOutput::Text => {
            let when = match e.status {
                "start" => String::new(),
                _ => format!(" ({:.2}s)", e.elapsed_ms as f64 / 1000.0),
            };
            let detail = e
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{} {} {}{when}{detail}",
                e.component, e.action, e.status
            )
        }
    };
    let _ = out.flush();
}

fn say(output: PlanOutput, message: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        PlanOutput::Json => writeln!(out, "{}", serde_json::json!({"result": message})),
        PlanOutput::Text => writeln!(out, "{message}"),
    }
    .map_err(Error::Output)
}

fn finish(ended: Ended, output: PlanOutput) -> Result<u8> {
    match ended {
        Ended::Done => {
            say(
                output,
                "done: every component is healthy on its new certificate",
            )?;
            Ok(exit::OK)
        }
        Ended::RolledBack { component, reason } => {
            say(output, &format!("failed at {component} ({reason}); its files were restored and it is healthy on the old certificate; the rollout stopped"))?;
            eprintln!("certs: error: rollout failed at {component} and was rolled back: {reason}");
            Ok(ROLLED_BACK)
        }
        Ended::RollbackFailed {
            component,
            reason,
            manual,
        } => {
            say(
                output,
                &format!("failed at {component} ({reason}) and the rollback failed: {manual}"),
            )?;
            eprintln!(
                "certs: error: rollout failed at {component} and the rollback failed: {manual}"
            );
            Ok(ROLLBACK_FAILED)
        }
    }
}

fn status(state_dir: &Path, output: PlanOutput) -> Result<u8> {
    let Some(j) = Journal::load(state_dir)? else {
        say(
            output,
            &format!("no rollout recorded in {}", state_dir.display()),
        )?;
        return Ok(exit::OK);
    };
    let mut out = std::io::stdout().lock();
    if output == PlanOutput::Json {
        let v = serde_json::json!({"outcome": j.outcome, "backup": j.backup, "steps": j.plan.steps.iter().zip(&j.steps).map(|(s, st)| serde_json::json!({"component": s.component, "state": st})).collect::<Vec<_>>(), "log": j.log});
        writeln!(out, "{v}").map_err(Error::Output)?;
        return Ok(exit::OK);
    }
    let w = |out: &mut std::io::StdoutLock, s: String| writeln!(out, "{s}").map_err(Error::Output);
    w(
        &mut out,
        format!("rollout of {}: {:?}", j.plan.bundle.display(), j.outcome),
    )?;
    w(&mut out, format!("backup: {}", j.backup.display()))?;
    for (s, st) in j.plan.steps.iter().zip(&j.steps) {
        w(&mut out, format!("  {}: {:?}", s.component, st))?;
    }
    if j.outcome == crate::rollout::journal::Outcome::Running {
        w(&mut out, "interrupted: run `certs rollout resume` to finish it or `certs rollout rollback` to undo it".into())?;
    }
    Ok(exit::OK)
}
