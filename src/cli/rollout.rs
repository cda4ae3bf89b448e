//! `certs rollout`: adapters over [`crate::rollout`] — build the plan, run the executor with
//! the real restarter and prober, print progress, map the executor's end to an [`Outcome`] (exit 0/3/4, decided in [`super::outcome`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{PlanOutput, RolloutPlanArgs, RolloutRunArgs};
use super::config::{RolloutConfig, RunConfig};
use super::outcome::Outcome;
use crate::error::{Error, Result};
use crate::rollout::exec::{Ended, Event, Executor, Timing};
use crate::rollout::journal::Journal;
use crate::rollout::membership::{self, GatewayAdmin};
use crate::rollout::plan::{self, Plan};
use crate::rollout::probe::TlsProber;
use crate::rollout::profile::{self, Profile};
use crate::rollout::resolve::Overrides;
use crate::rollout::restart::SystemRestarter;

/// Bound on one etcd request of the membership steps (a snapshot gets longer).
const ETCD_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(c: &RolloutConfig) -> Result<Outcome> {
    match c {
        RolloutConfig::Plan(a) => {
            let plan = build_plan(&a.plan, &a.run)?;
            print_plan(&plan, a.plan.output)?;
            Ok(Outcome::Clean)
        }
        RolloutConfig::Apply(a, run) => {
            let plan = build_plan(&a.plan, &a.run)?;
            let _lock = lock(run)?;
            let ended = with_executor(run, a.plan.output, |ex| ex.apply(&plan))?;
            if ended == Ended::Done && plan.etcd.is_some() && a.plan.output == PlanOutput::Text {
                membership_summary(&run.state_dir)?;
            }
            finish(ended, a.plan.output)
        }
        RolloutConfig::Status(a) => status(&a.state.state_dir, a.output),
        RolloutConfig::Resume(a, run) => {
            let _lock = lock(run)?;
            // A rollback killed midway: resume finishes it, and says so as `rollback` does.
            let rolling_back = Journal::load(&run.state_dir)?
                .is_some_and(|j| j.outcome == crate::rollout::journal::Outcome::RollingBack);
            let ended = with_executor(run, a.output, |ex| ex.resume())?;
            match ended {
                Ended::RolledBack { .. } if rolling_back => {
                    say(
                        a.output,
                        "rolled back: every file is the backed-up one again",
                    )?;
                    Ok(Outcome::Clean)
                }
                other => finish(other, a.output),
            }
        }
        RolloutConfig::Rollback(a, run) => {
            let _lock = lock(run)?;
            let ended = with_executor(run, a.output, |ex| ex.rollback(a.backup.as_deref()))?;
            match ended {
                Ended::RolledBack { .. } => {
                    say(
                        a.output,
                        "rolled back: every file is the backed-up one again",
                    )?;
                    Ok(Outcome::Clean)
                }
                other => finish(other, a.output),
            }
        }
    }
}

/// Reads the bundle and the node, binds them into a plan, and proves every step can pass:
/// any problem refuses the plan (exit 2) before anything is touched. A retirement's etcd
/// membership steps (snapshots into `state_dir`) read the live member list, and only that.
fn build_plan(a: &RolloutPlanArgs, run: &RolloutRunArgs) -> Result<Plan> {
    let state_dir = run.state.state_dir.as_path();
    let root = std::path::absolute(&a.root).map_err(|source| Error::Read {
        path: a.root.clone(),
        source,
    })?;
    // A bundle made under another root (on the CA host, from a node's export; or `certs change
    // --root DIR`) has its targets moved under this one.
    let manifest = plan::read_bundle(&a.bundle)?.rerooted(&root);
    // What others could have written is not installed as the node's keys and certificates.
    let sources = manifest.files.iter().map(|f| a.bundle.join(&f.bundle_path));
    for p in [a.bundle.clone(), a.bundle.join("bundle.json")]
        .into_iter()
        .chain(sources)
    {
        not_writable_by_others(&p, "bundle")?;
    }
    let retire = manifest
        .etcd_membership
        .as_ref()
        .filter(|_| !a.no_etcd_membership)
        .map(|m| m.remove.clone());
    let node = crate::sys::node::read(&root);
    let mut profile: Profile = match &a.profile {
        Some(p) if crate::sys::fs::is_file(Path::new(p)) => {
            let bytes = crate::sys::fs::read_file(Path::new(p))?;
            profile::parse(Path::new(p), &String::from_utf8_lossy(&bytes))?.rerooted(&root)
        }
        Some(name) => profile::builtin(name)?.rerooted(&root),
        None => {
            // The node's own configuration says which layout it is; else the targets' paths
            // (as they are on the node: strip --root first) do.
            let targets: Vec<_> = manifest
                .files
                .iter()
                .map(|f| match f.target.strip_prefix(&root) {
                    Ok(rel) if root != Path::new("/") => Path::new("/").join(rel),
                    _ => f.target.clone(),
                })
                .collect();
            match profile::detect_from_node(&node) {
                Some(n) => profile::builtin(n)?.rerooted(&root),
                // Membership steps alone restart nothing: no profile needed.
                None if manifest.files.is_empty() => Profile {
                    name: "none".into(),
                    components: vec![],
                },
                None => profile::builtin(profile::detect(&targets)?)?.rerooted(&root),
            }
        }
    };
    // Only components that will run need their addresses; a failed lookup says how to override.
    profile.resolve(&node);
    let mut overrides = overrides(a)?;
    overrides.etcd_membership = retire.is_some();
    let read = |p: &Path| crate::sys::fs::read_opt_bounded(p);
    let (mut plan, mut problems) = crate::rollout::resolve::build(
        &a.bundle, &root, &manifest, &node, &profile, &overrides, &read,
    )?;
    if a.rebase {
        let r = crate::rollout::rebase::rebase(&mut plan, &read);
        if a.output == PlanOutput::Text {
            for line in &r.rebased {
                eprintln!("certs: {line}");
            }
        }
        problems.extend(r.problems);
    }
    if let Some(remove) = retire {
        let access = crate::rollout::resolve::etcd_access(&root, &node, &overrides, &read);
        let state_dir = std::path::absolute(state_dir).map_err(|source| Error::Read {
            path: state_dir.to_path_buf(),
            source,
        })?;
        problems.extend(membership::plan(
            &mut plan,
            &remove,
            access,
            &node,
            &GatewayAdmin {
                timeout: ETCD_REQUEST_TIMEOUT,
            },
            &state_dir.join("snapshots"),
        ));
    }
    // Every target resolved on this node, inside --root, a regular file of sane size.
    problems.extend(plan.confine(&root));
    // ... and a file the node (or the profile, or the operator) has a place for.
    let vouched: Vec<PathBuf> = profile
        .components
        .iter()
        .flat_map(|c| {
            c.files.iter().chain(
                c.health
                    .iter()
                    .flat_map(|h| h.client_cert.iter().chain(&h.client_key).chain(&h.serves)),
            )
        })
        .cloned()
        .chain(
            a.allow_dir
                .iter()
                .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
        )
        .collect();
    problems.extend(plan.unreferenced(&root, &node, &vouched));
    let runnable = |program: &str| crate::sys::proc::runnable(program);
    problems.extend(crate::rollout::validate::validate(
        &plan,
        &crate::rollout::validate::Io {
            read: &read,
            runnable: &runnable,
        },
    ));
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Error::Refused {
            what: "the rollout cannot pass as planned; nothing was changed".into(),
            problems,
        })
    }
}

fn overrides(a: &RolloutPlanArgs) -> Result<Overrides> {
    let pairs = |flag: &str, v: &[String]| -> Result<Vec<(String, String)>> {
        v.iter()
            .map(|spec| {
                spec.split_once('=')
                    .filter(|(n, v)| !n.is_empty() && !v.is_empty())
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .ok_or_else(|| {
                        Error::Usage(format!("{flag}: expected NAME=VALUE, found `{spec}`"))
                    })
            })
            .collect()
    };
    let files = |flag: &str, v: &[String]| -> Result<Vec<(String, PathBuf)>> {
        pairs(flag, v)?
            .into_iter()
            .map(|(n, p)| {
                std::path::absolute(&p)
                    .map(|p| (n, p))
                    .map_err(|source| Error::Read {
                        path: p.into(),
                        source,
                    })
            })
            .collect()
    };
    let health = pairs("--health", &a.health)?;
    for (n, u) in &health {
        crate::rollout::plan::parse_url(u)
            .map_err(|e| Error::Usage(format!("--health {n}: {e}")))?;
    }
    Ok(Overrides {
        restart_cmd: pairs("--restart-cmd", &a.restart_cmd)?,
        health,
        health_ca: files("--health-ca", &a.health_ca)?,
        health_cert: files("--health-cert", &a.health_cert)?,
        health_key: files("--health-key", &a.health_key)?,
        restart: a.restart.clone(),
        etcd_membership: false,
        profile_given: a.profile.is_some(),
    })
}

fn print_plan(plan: &Plan, output: PlanOutput) -> Result<()> {
    let text = match output {
        PlanOutput::Json => {
            let mut v = serde_json::to_value(plan).map_err(|e| Error::Usage(e.to_string()))?;
            if let Some(o) = v.as_object_mut() {
                o.insert("schema".into(), "certs.plan/v1".into());
            }
            serde_json::to_string_pretty(&v).map_err(|e| Error::Usage(e.to_string()))?
        }
        PlanOutput::Text => plan.render(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", text.trim_end()).map_err(Error::Output)
}

/// A bundle or state directory (or a file in it) that a group or other users can write is
/// refused, one line: its keys and journal would be theirs to choose.
fn not_writable_by_others(path: &Path, what: &str) -> Result<()> {
    match crate::sys::fs::writable_by_others(path) {
        Some(mode) => Err(Error::Input {
            path: path.to_path_buf(),
            expected: format!("a {what} that only its owner can write"),
            found: format!("mode {mode:04o} (group or others can write it; chmod go-w)"),
        }),
        None => Ok(()),
    }
}

fn lock(run: &RunConfig) -> Result<crate::sys::fs::Lock> {
    let dir = &run.state_dir;
    not_writable_by_others(dir, "state directory")?;
    crate::sys::fs::create_new_dir(dir).or_else(|e| {
        if crate::sys::fs::is_dir(dir) {
            Ok(())
        } else {
            Err(e)
        }
    })?;
    not_writable_by_others(dir, "state directory")?;
    crate::sys::fs::lock(&dir.join("lock")).map_err(crate::error::Error::from)
}

fn with_executor(
    run: &RunConfig,
    output: PlanOutput,
    f: impl FnOnce(&mut Executor) -> Result<Ended>,
) -> Result<Ended> {
    let timing = Timing {
        deadline: run.health_timeout,
        interval: run.health_interval,
    };
    let restarter = SystemRestarter {
        timeout: run.restart_timeout,
        park_for: run.park,
    };
    let prober = TlsProber {
        timeout: Duration::from_secs(5).min(timing.deadline.max(Duration::from_secs(1))),
    };
    let mut print = |e: &Event| print_event(e, output);
    let mut ex = Executor {
        state_dir: run.state_dir.clone(),
        restarter: &restarter,
        prober: &prober,
        timing,
        now: &crate::sys::clock::now,
        on_event: &mut print,
        fault: &|_| Ok(()),
        etcd: &GatewayAdmin {
            timeout: ETCD_REQUEST_TIMEOUT,
        },
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
        PlanOutput::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"schema": "certs.rollout-result/v1", "result": message})
        ),
        PlanOutput::Text => writeln!(out, "{message}"),
    }
    .map_err(Error::Output)
}

/// What the etcd membership steps of the recorded rollout changed, one line.
fn membership_summary(state_dir: &Path) -> Result<()> {
    let Some(j) = Journal::load(state_dir)? else {
        return Ok(());
    };
    let prefix = format!("{}: done: ", membership::COMPONENT);
    let done: Vec<&str> = j
        .log
        .iter()
        .filter_map(|e| e.message.strip_prefix(&prefix))
        .collect();
    say(
        PlanOutput::Text,
        &format!("etcd membership changed: {}", done.join("; ")),
    )
}

/// Newlines (a restart command's output) folded, so a verdict is one line.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The verdict of a run: how it ended (the exit code), the one line that says it, and the
/// result object `-o json` prints (`certs.rollout-result/v1`).
fn verdict(ended: &Ended) -> (Outcome, String, serde_json::Value) {
    let (outcome, code, message) = match ended {
        Ended::Done => (
            "done",
            Outcome::Clean,
            "done: every component is healthy on its new certificate".to_string(),
        ),
        Ended::AlreadyApplied => (
            "already-applied",
            Outcome::Clean,
            "already applied: every target already holds the bundle's new file; nothing was changed (the rollout that installed them keeps its backup: `certs rollout rollback` with its --state-dir)".to_string(),
        ),
        Ended::RolledBack { component, reason } => (
            "rolled-back",
            Outcome::RolledBack,
            format!("rollout failed at {component} and was rolled back: {reason}; its files were restored and it is healthy on the old certificate; the rollout stopped"),
        ),
        Ended::RollbackFailed {
            component,
            reason,
            manual,
        } => (
            "rollback-failed",
            Outcome::RollbackFailed,
            format!("rollout failed at {component} ({reason}) and the rollback failed: {manual}"),
        ),
        Ended::Stopped {
            component,
            step,
            reason,
            done,
            resumable,
        } => {
            let did = if done.is_empty() {
                String::new()
            } else {
                format!(" Done before it stopped: {}.", done.join("; "))
            };
            let _ = resumable;
            let message = format!("rollout stopped at {component} ({step}): {reason}.{did} Every file step before it is done and healthy on its new certificate (the membership steps come last); a removed member cannot be put back by a rollback. Fix the cause, then `certs rollout resume` continues with this membership step (it checks what is already done)");
            ("stopped", Outcome::RolledBack, message)
        }
    };
    let message = one_line(&message);
    let mut v = serde_json::json!({"schema": "certs.rollout-result/v1", "result": message, "outcome": outcome});
    match ended {
        Ended::Done | Ended::AlreadyApplied => {}
        Ended::RolledBack { component, reason } => {
            v["component"] = component.as_str().into();
            v["reason"] = reason.as_str().into();
        }
        Ended::RollbackFailed {
            component,
            reason,
            manual,
        } => {
            v["component"] = component.as_str().into();
            v["reason"] = reason.as_str().into();
            v["manual"] = manual.as_str().into();
        }
        Ended::Stopped {
            component,
            step,
            reason,
            done,
            resumable,
        } => {
            v["component"] = component.as_str().into();
            v["step"] = step.as_str().into();
            v["reason"] = reason.as_str().into();
            v["done"] = done.clone().into();
            v["resumable"] = (*resumable).into();
        }
    }
    (code, message, v)
}

/// The verdict, said once. Text: stdout when done; a failure only on stderr, one
/// `certs: error: …` line. JSON: one result object on stdout, and a failure's stderr line.
fn finish(ended: Ended, output: PlanOutput) -> Result<Outcome> {
    let (code, message, v) = verdict(&ended);
    if output == PlanOutput::Json {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{v}")
            .and_then(|_| out.flush())
            .map_err(Error::Output)?;
    } else if code == Outcome::Clean {
        say(output, &message)?;
    }
    if code != Outcome::Clean {
        let _ = std::io::stdout().flush();
        eprintln!("certs: error: {message}");
    }
    Ok(code)
}

/// Clean (exit 0): done (or nothing recorded) and the files agree; Problem (1): interrupted, in
/// progress, or files that contradict the journal; RolledBack (3); RollbackFailed (4). The journal is not taken
/// on its word: every target is compared with the SHA-256s it records.
fn status(state_dir: &Path, output: PlanOutput) -> Result<Outcome> {
    use crate::rollout::exec::{contradictions, held, Held};
    use crate::rollout::journal::Outcome as Recorded;
    let Some(j) = Journal::load(state_dir)? else {
        say(
            output,
            &format!("no rollout recorded in {}", state_dir.display()),
        )?;
        return Ok(Outcome::Clean);
    };
    let unfinished = matches!(j.outcome, Recorded::Running | Recorded::RollingBack);
    // A live run holds the lock: it is in progress, not interrupted.
    let holder = crate::sys::fs::lock_holder(&state_dir.join("lock")).filter(|_| unfinished);
    let wrong = if holder.is_some() {
        vec![]
    } else {
        contradictions(&j)
    };
    let code = match j.outcome {
        Recorded::Done if wrong.is_empty() => Outcome::Clean,
        Recorded::RolledBack if wrong.is_empty() => Outcome::RolledBack,
        Recorded::RollbackFailed => Outcome::RollbackFailed,
        _ => Outcome::Problem,
    };
    // Static pods a stopped run left parked: their manifests are out of the kubelet's directory.
    let parked: Vec<_> = j
        .plan
        .steps
        .iter()
        .filter_map(|s| match &s.restart {
            Some(crate::rollout::profile::Restart::StaticPod(m)) => {
                let p = crate::rollout::restart::parked_path(m);
                (!crate::sys::fs::exists(m) && crate::sys::fs::exists(&p))
                    .then(|| (s.component.clone(), m.clone(), p))
            }
            _ => None,
        })
        .collect();
    let files: Vec<Held> = j.plan.files.iter().map(held).collect();
    let earlier = Journal::archived(state_dir).map_or(0, |a| a.len());
    let mut out = std::io::stdout().lock();
    if output == PlanOutput::Json {
        let v = serde_json::json!({
            "schema": "certs.rollout-status/v1",
            "outcome": j.outcome,
            "in_progress": holder.is_some(),
            "pid": holder,
            "backup": j.backup,
            "steps": j.plan.steps.iter().zip(&j.steps).map(|(s, st)| serde_json::json!({"component": s.component, "state": st})).collect::<Vec<_>>(),
            "files": j.plan.files.iter().zip(&files).map(|(f, h)| serde_json::json!({"target": f.target, "link": f.link, "holds": h})).collect::<Vec<_>>(),
            "contradictions": wrong,
            "earlier_rollouts": earlier,
            "parked": parked.iter().map(|(c, m, p)| serde_json::json!({"component": c, "manifest": m, "parked": p})).collect::<Vec<_>>(),
            "log": j.log,
        });
        writeln!(out, "{v}").map_err(Error::Output)?;
        return Ok(code);
    }
    let w = |out: &mut std::io::StdoutLock, s: String| writeln!(out, "{s}").map_err(Error::Output);
    w(
        &mut out,
        format!("rollout of {}: {:?}", j.plan.bundle.display(), j.outcome),
    )?;
    w(&mut out, format!("backup: {}", j.backup.display()))?;
    if earlier > 0 {
        w(
            &mut out,
            format!(
                "earlier rollouts kept: {earlier} in {} (`certs rollout rollback BACKUP` reaches them)",
                crate::rollout::journal::archive_dir(state_dir).display()
            ),
        )?;
    }
    let word = |h: Held| match h {
        Held::Old => "old",
        Held::New => "new",
        Held::Other => "neither old nor new",
    };
    for (i, (s, st)) in j.plan.steps.iter().zip(&j.steps).enumerate() {
        let held: Vec<Held> = s.files.iter().map(|&f| files[f]).collect();
        let on_disk = match held.first() {
            None => String::new(),
            Some(&first) if held.iter().all(|&h| h == first) => {
                format!(" (files: {})", word(first))
            }
            Some(_) => format!(
                " (files: {})",
                s.files
                    .iter()
                    .map(|&f| {
                        let p = &j.plan.files[f];
                        let name = p.link.as_ref().unwrap_or(&p.target);
                        let name = name.file_name().unwrap_or(name.as_os_str());
                        format!("{} {}", name.to_string_lossy(), word(files[f]))
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        match j.plan.etcd.as_ref().and_then(|r| r.action(i)) {
            Some(a) => w(
                &mut out,
                format!("  {} ({}): {:?}", s.component, a.description, st),
            )?,
            None => w(&mut out, format!("  {}: {:?}{on_disk}", s.component, st))?,
        }
    }
    for (c, m, p) in &parked {
        w(
            &mut out,
            format!(
                "  {c}: its manifest {} is parked at {} (resume or rollback puts it back)",
                m.display(),
                p.display()
            ),
        )?;
    }
    if let Some(pid) = &holder {
        let pid = if pid.is_empty() {
            String::new()
        } else {
            format!(" (pid {pid})")
        };
        return w(&mut out, format!("in progress: a certs process{pid} holds the lock and is running it; run `certs rollout status` again to follow it"))
            .map(|_| code);
    }
    for line in &wrong {
        w(&mut out, format!("  files do not match: {line}"))?;
    }
    match j.outcome {
        Recorded::Running => {
            if let Some(why) = j.failure(membership::COMPONENT) {
                w(
                    &mut out,
                    format!("stopped in an etcd membership step: {}", one_line(why)),
                )?;
            }
            w(&mut out, "interrupted: run `certs rollout resume` to finish it or `certs rollout rollback` to undo it".into())?
        }
        Recorded::RollingBack => w(
            &mut out,
            "interrupted during a rollback: run `certs rollout rollback` to finish it".into(),
        )?,
        Recorded::RolledBack | Recorded::RollbackFailed => {
            if let Some(last) = j.log.last() {
                w(
                    &mut out,
                    format!("last: {} {}", last.time, one_line(&last.message)),
                )?;
            }
        }
        Recorded::Done => {}
    }
    if !wrong.is_empty() && !unfinished {
        w(&mut out, format!("the files on the node do not match the recorded {:?}: run `certs rollout rollback` to put the backed-up files back", j.outcome))?;
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_of_a_run_has_its_outcome_and_one_line() {
        let rolled = Ended::RolledBack {
            component: "etcd".into(),
            reason: "gate failed:\nconnection refused".into(),
        };
        let (code, message, v) = verdict(&rolled);
        assert_eq!(code, Outcome::RolledBack);
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.starts_with(
                "rollout failed at etcd and was rolled back: gate failed: | connection refused"
            ),
            "{message}"
        );
        assert_eq!(v["schema"], "certs.rollout-result/v1");
        assert_eq!(v["outcome"], "rolled-back");
        assert_eq!(v["component"], "etcd");

        assert_eq!(verdict(&Ended::Done).0, Outcome::Clean);
        assert_eq!(
            verdict(&Ended::AlreadyApplied).2["outcome"],
            "already-applied"
        );
        let failed = Ended::RollbackFailed {
            component: "kube-apiserver".into(),
            reason: "gate failed".into(),
            manual: "restore from /var/lib/certs/backup".into(),
        };
        let (code, _, v) = verdict(&failed);
        assert_eq!(code, Outcome::RollbackFailed);
        assert_eq!(v["manual"], "restore from /var/lib/certs/backup");
        // A stopped membership step exits as a rollback does (3), and says what was done.
        let stopped = Ended::Stopped {
            component: "etcd-membership".into(),
            step: "member remove etcd3".into(),
            reason: "timed out".into(),
            done: vec!["snapshot".into()],
            resumable: true,
        };
        let (code, message, v) = verdict(&stopped);
        assert_eq!(code, Outcome::RolledBack);
        assert!(
            message.contains("Done before it stopped: snapshot."),
            "{message}"
        );
        assert_eq!(v["outcome"], "stopped");
        assert_eq!(v["resumable"], true);
    }
}
