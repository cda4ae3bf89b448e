//! `certs rollout` safety around the executor: the state-directory lock against a second real
//! process, `status` exit codes for every recorded outcome, a rollback finished by `resume` and
//! its verdict said once, and a static pod left parked by a killed run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use certs::rollout::journal::{Journal, Outcome, StepState};
use certs::rollout::plan::Plan;
use serde_json::json;

use crate::util::{certs, fixture, s, tree_digest};

fn sha(bytes: &[u8]) -> String {
    certs::pki::cert::sha256_hex(bytes)
}

/// A node with one file (`node/a.crt`, old content), its backup, and a plan whose single step
/// `etcd` swaps it, restarts with `restart` and has no gate.
struct Recorded {
    dir: tempfile::TempDir,
    state: PathBuf,
    target: PathBuf,
    old: Vec<u8>,
    new: Vec<u8>,
}

fn recorded(restart: serde_json::Value, outcome: Outcome, steps: &[StepState]) -> Recorded {
    let dir = tempfile::tempdir().unwrap();
    let (node, bundle, state) = (
        dir.path().join("node"),
        dir.path().join("bundle"),
        dir.path().join("state"),
    );
    let backup = state.join("backups/20260601T000000Z-1");
    for d in [&node, &bundle, &backup] {
        std::fs::create_dir_all(d).unwrap();
    }
    let (old, new) = (b"old a.crt\n".to_vec(), b"new a.crt\n".to_vec());
    let target = node.join("a.crt");
    std::fs::write(&target, &old).unwrap();
    std::fs::write(bundle.join("a.crt"), &new).unwrap();
    std::fs::write(backup.join("000-a.crt"), &old).unwrap();
    std::fs::write(
        backup.join("manifest.json"),
        serde_json::to_vec(&json!([{
            "target": target, "file": backup.join("000-a.crt"), "mode": 0o600,
            "uid": null, "gid": null, "sha256": sha(&old),
        }]))
        .unwrap(),
    )
    .unwrap();
    let plan: Plan = serde_json::from_value(json!({
        "bundle": bundle, "ca": bundle.join("ca.crt"), "profile": "test",
        "files": [{
            "target": target, "source": bundle.join("a.crt"), "kind": "other",
            "role": "unknown", "ca": bundle.join("ca.crt"), "mode": 0o600,
            "old_sha256": sha(&old), "new_sha256": sha(&new),
            "old_serial": null, "new_serial": null, "sans": [],
        }],
        "steps": [{
            "component": "etcd", "kind": "etcd", "restart": restart, "files": [0], "gates": [],
        }],
    }))
    .expect("a plan");
    let mut j = Journal::new(plan, backup);
    j.outcome = outcome;
    j.steps = steps.to_vec();
    j.save(&state).unwrap();
    Recorded {
        dir,
        state,
        target,
        old,
        new,
    }
}

fn status(state: &Path, json: bool) -> crate::util::Run {
    let mut args = vec!["rollout".to_string(), "status".into(), "--state-dir".into()];
    args.push(s(state));
    if json {
        args.extend(["-o".to_string(), "json".into()]);
    }
    certs(&args)
}

#[test]
fn status_exit_codes_tell_the_recorded_outcome() {
    let empty = tempfile::tempdir().unwrap();
    let none = status(empty.path(), false);
    assert_eq!(none.code, 0, "{}{}", none.stdout, none.stderr);
    assert!(
        none.stdout.contains("no rollout recorded"),
        "{}",
        none.stdout
    );
    let cases = [
        (Outcome::Done, StepState::Healthy, 0, "done"),
        (Outcome::Running, StepState::Restarting, 1, "running"),
        (Outcome::RolledBack, StepState::RolledBack, 3, "rolled-back"),
        (
            Outcome::RollbackFailed,
            StepState::Failed,
            4,
            "rollback-failed",
        ),
    ];
    for (outcome, step, code, word) in cases {
        let r = recorded(json!({"command": "true"}), outcome, &[step]);
        if step == StepState::Healthy {
            // Healthy on the new certificate: its file is the new one (status checks that).
            std::fs::write(&r.target, &r.new).unwrap();
        }
        let text = status(&r.state, false);
        assert_eq!(text.code, code, "{word}: {}{}", text.stdout, text.stderr);
        assert!(text.stderr.is_empty(), "{word}: {}", text.stderr);
        assert_eq!(
            text.stdout.contains("interrupted"),
            outcome == Outcome::Running,
            "{word}: {}",
            text.stdout
        );
        let js = status(&r.state, true);
        assert_eq!(js.code, code, "{word} -o json: {}", js.stderr);
        assert_eq!(js.json()["outcome"], word);
    }
}

#[test]
fn status_names_a_manifest_a_killed_run_left_parked() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("etc/kubernetes/manifests/etcd.yaml");
    let parked = certs::rollout::restart::parked_path(&manifest);
    assert_eq!(
        parked,
        dir.path()
            .join("etc/kubernetes/manifests.certs-parked/etcd.yaml")
    );
    std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    std::fs::create_dir_all(parked.parent().unwrap()).unwrap();
    std::fs::write(&parked, "kind: Pod\n").unwrap();
    let r = recorded(
        json!({"static-pod": manifest}),
        Outcome::Running,
        &[StepState::Restarting],
    );
    let text = status(&r.state, false);
    assert_eq!(text.code, 1, "{}", text.stderr);
    assert!(
        text.stdout
            .contains(&format!("is parked at {}", parked.display())),
        "{}",
        text.stdout
    );
    let js = status(&r.state, true).json();
    assert_eq!(js["parked"][0]["component"], "etcd");
    assert_eq!(js["parked"][0]["parked"], s(&parked));
    // status only reads: the manifest is still parked.
    assert!(!manifest.exists() && parked.exists());
}

/// A run killed while rolling `etcd` back (recorded Failed, the file new again): `resume`
/// finishes the rollback instead of running the step forward, and says so once.
#[test]
fn resume_finishes_an_interrupted_rollback_and_says_the_verdict_once() {
    for json_output in [false, true] {
        let r = recorded(
            json!({"command": "true"}),
            Outcome::Running,
            &[StepState::Failed],
        );
        std::fs::write(&r.target, &r.new).unwrap();
        let mut args = vec![
            "rollout".to_string(),
            "resume".into(),
            "--state-dir".into(),
            s(&r.state),
        ];
        if json_output {
            args.extend(["-o".to_string(), "json".into()]);
        }
        let run = certs(&args);
        assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
        assert_eq!(std::fs::read(&r.target).unwrap(), r.old, "restored");
        // One line on stderr; the verdict is not repeated on stdout.
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr
                .starts_with("certs: error: rollout failed at etcd and was rolled back"),
            "{}",
            run.stderr
        );
        if json_output {
            let lines: Vec<serde_json::Value> = run
                .stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
            let results: Vec<_> = lines.iter().filter(|l| l.get("result").is_some()).collect();
            assert_eq!(results.len(), 1, "{}", run.stdout);
            assert_eq!(results[0]["outcome"], "rolled-back");
            assert_eq!(results[0]["component"], "etcd");
            assert!(lines.last().unwrap().get("result").is_some());
        } else {
            assert!(!run.stdout.contains("failed at"), "{}", run.stdout);
            assert!(run.stdout.contains("etcd rollback ok"), "{}", run.stdout);
        }
        let st = status(&r.state, false);
        assert_eq!(st.code, 3, "{}", st.stdout);
        drop(r.dir);
    }
}

/// Holds `STATE/lock` with util-linux flock(1), a process of its own, until dropped.
struct FlockHolder(std::process::Child);

impl FlockHolder {
    fn hold(lock: &Path) -> Option<FlockHolder> {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new("flock")
            .arg(lock)
            .args(["sh", "-c", "echo locked; exec cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        Some(FlockHolder(child))
    }
}

impl Drop for FlockHolder {
    fn drop(&mut self) {
        // Closing cat's stdin ends it, and flock with it, which releases the lock.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_rollout_on_a_locked_state_dir_exits_2_at_once_and_touches_nothing() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let pki = root.join("etc/kubernetes/pki");
    let bundle = root.join("bundle");
    let run = certs([
        "reissue",
        &s(&pki.join("apiserver.crt")),
        "--add-san",
        "10.21.22.101",
        "--out",
        &s(&bundle),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = root.join("state");
    std::fs::create_dir(&state).unwrap();
    let node = root.join("etc");
    let before = tree_digest(&node);
    let refused = |run: crate::util::Run, took: Duration, what: &str| {
        assert_eq!(run.code, 2, "{what}: {}{}", run.stdout, run.stderr);
        assert!(took < Duration::from_secs(10), "{what} waited {took:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("`{}`", state.display())) && run.stderr.contains("lock"),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(before, tree_digest(&node), "{what} changed the node");
    };
    let apply = || {
        let t = Instant::now();
        let run = certs([
            "rollout",
            "apply",
            &s(&bundle),
            "--root",
            &s(root),
            "--state-dir",
            &s(&state),
            "--park",
            "0s",
        ]);
        (run, t.elapsed())
    };

    // Held by this test process through the library, then by flock(1).
    let held = certs::sys::fs::lock(&state.join("lock")).unwrap();
    let (run, took) = apply();
    refused(run, took, "apply (library lock)");
    drop(held);
    match FlockHolder::hold(&state.join("lock")) {
        Some(holder) => {
            let (run, took) = apply();
            refused(run, took, "apply (flock(1))");
            drop(holder);
        }
        None => eprintln!("flock(1) not installed: only the library holder was tried"),
    }
    // A refused apply records nothing: no backup, no journal.
    assert!(!state.join("backups").exists());
    assert!(!state.join("journal.json").exists());

    // resume and rollback of a recorded rollout are refused the same way, the journal untouched.
    let r = recorded(
        json!({"command": "true"}),
        Outcome::Running,
        &[StepState::Swapped],
    );
    let journal = std::fs::read(r.state.join("journal.json")).unwrap();
    let held = certs::sys::fs::lock(&r.state.join("lock")).unwrap();
    for verb in ["resume", "rollback"] {
        let t = Instant::now();
        let run = certs(["rollout", verb, "--state-dir", &s(&r.state)]);
        assert_eq!(run.code, 2, "{verb}: {}{}", run.stdout, run.stderr);
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(
            run.stderr.contains(&format!("`{}`", r.state.display())),
            "{verb}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read(r.state.join("journal.json")).unwrap(),
            journal
        );
        assert_eq!(std::fs::read(&r.target).unwrap(), r.old);
    }
    // Released, the same rollback goes ahead (the lock was the only reason).
    drop(held);
    let run = certs(["rollout", "rollback", "--state-dir", &s(&r.state)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        Journal::load(&r.state).unwrap().unwrap().outcome,
        Outcome::RolledBack
    );
}

/// A run killed while a static pod was parked, played through the real binary: the manifest is
/// back, byte for byte, after `resume` and after `rollback`.
#[test]
fn resume_and_rollback_put_a_parked_manifest_back() {
    for verb in ["resume", "rollback"] {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("etc/kubernetes/manifests/etcd.yaml");
        let parked = certs::rollout::restart::parked_path(&manifest);
        let bytes = b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n";
        std::fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        std::fs::create_dir_all(parked.parent().unwrap()).unwrap();
        std::fs::write(&parked, bytes).unwrap();
        let r = recorded(
            json!({"static-pod": manifest}),
            Outcome::Running,
            &[StepState::Restarting],
        );
        std::fs::write(&r.target, &r.new).unwrap();
        let run = certs(["rollout", verb, "--state-dir", &s(&r.state), "--park", "0s"]);
        assert_eq!(run.code, 0, "{verb}: {}{}", run.stdout, run.stderr);
        assert_eq!(std::fs::read(&manifest).unwrap(), bytes, "{verb}");
        assert!(!parked.exists(), "{verb}");
        let first = run.stdout.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("etcd unpark start"),
            "{verb}: {}",
            run.stdout
        );
        let want = if verb == "resume" { &r.new } else { &r.old };
        assert_eq!(&std::fs::read(&r.target).unwrap(), want, "{verb}");
    }
}
