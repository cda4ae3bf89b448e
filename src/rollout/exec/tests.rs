//! The executor end to end on temporary trees: the happy path, a fault at every mutating
//! step, unhealthy components, new files, owners and modes, parked manifests, resume and
//! rollback after a crash.
#![allow(clippy::disallowed_methods)] // tests build trees with std::fs

use super::backup::BackupEntry;
use super::*;
use crate::rollout::plan::{FileSwap, Step};
use std::cell::Cell;

struct OkRestarter;
impl Restarter for OkRestarter {
    fn restart(&self, _: &Restart) -> std::result::Result<(), crate::rollout::Error> {
        Ok(())
    }
}
struct Health(bool);
impl Prober for Health {
    fn check(&self, _: &Gate, _: Option<&str>) -> std::result::Result<(), crate::rollout::Error> {
        if self.0 {
            Ok(())
        } else {
            Err(crate::rollout::Error::Fault("refused".into()))
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

fn run(plan: &Plan, state: &Path, healthy: bool, fail_at: Option<usize>) -> (Result<Ended>, usize) {
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
            Err(crate::rollout::Error::Fault(format!("injected at {n}")))
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
impl<F: Fn(&Restart) -> std::result::Result<(), crate::rollout::Error>> Restarter
    for FnRestarter<F>
{
    fn restart(&self, r: &Restart) -> std::result::Result<(), crate::rollout::Error> {
        (self.0)(r)
    }
}
struct FnProber<F>(F);
impl<F: Fn(&Gate, Option<&str>) -> std::result::Result<(), crate::rollout::Error>> Prober
    for FnProber<F>
{
    fn check(
        &self,
        g: &Gate,
        serial: Option<&str>,
    ) -> std::result::Result<(), crate::rollout::Error> {
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
            crate::sys::fs::move_synced(m, &crate::rollout::restart::parked_path(m)).unwrap();
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
    assert!(crate::rollout::restart::parked_path(&manifest).exists());
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
        assert!(!crate::rollout::restart::parked_path(&manifest).exists());
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
        other => Err(crate::rollout::Error::Fault(format!(
            "serves serial 01, expected {other:?}"
        ))),
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
            _ => Err(crate::rollout::Error::Fault("not the old serial".into())),
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
    let down =
        FnProber(|_: &Gate, _: Option<&str>| Err(crate::rollout::Error::Fault("refused".into())));
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
