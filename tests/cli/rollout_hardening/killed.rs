//! A kill -9 at every journal transition (and before every staged write, rename and
//! restart) of `apply`, `resume` and `rollback`, on the node's real plan split in two steps:
//! each runs in a child process (this test binary) that SIGKILLs itself at the fault point,
//! so nothing after it runs, no destructor either, and the files and the journal stay as they
//! are at that instant. After each, `status` from the binary must tell the
//! truth, and `resume` or `rollback` from the binary must leave every certificate/key pair
//! all-old or all-new and pairing.

use super::*;
use certs::rollout::exec::{Event, Executor, Prober, Restarter, Timing};
use certs::rollout::plan::{Gate, Plan};
use certs::rollout::profile::Restart;
use std::cell::Cell;
use std::time::Duration;

struct Ok_;
impl Restarter for Ok_ {
    fn restart(&self, _: &Restart) -> std::result::Result<(), certs::rollout::Error> {
        Ok(())
    }
}
impl Prober for Ok_ {
    fn check(&self, _: &Gate, _: Option<&str>) -> std::result::Result<(), certs::rollout::Error> {
        Ok(())
    }
}

/// The plan `rollout plan -o json` makes, its files-only step split into one step per pair,
/// each restarted with `true`.
fn plan(n: &Node) -> Plan {
    let r = n.rollout("plan", Path::new("-"), &["-o", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut plan: Plan = serde_json::from_str(&r.stdout).unwrap();
    let one = plan.steps[0].clone();
    let pair = |crt: &str| -> Vec<usize> {
        let stem = crt.trim_end_matches(".crt");
        (0..plan.files.len())
            .filter(|&i| plan.files[i].target.file_stem().is_some_and(|s| s == stem))
            .collect()
    };
    plan.steps = PAIRS
        .iter()
        .map(|(crt, _)| {
            let mut s = one.clone();
            s.component = crt.trim_end_matches(".crt").into();
            s.files = pair(crt);
            s.restart = Some(Restart::Command("true".into()));
            s.note = None;
            s
        })
        .collect();
    plan
}

/// One executor operation, by name so that a child process can run it.
#[derive(Clone, Copy)]
enum Op {
    Apply,
    Resume,
    Rollback,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Apply => "apply",
            Op::Resume => "resume",
            Op::Rollback => "rollback",
        }
    }

    fn run(
        self,
        ex: &mut Executor,
        plan: &Plan,
    ) -> certs::error::Result<certs::rollout::exec::Ended> {
        match self {
            Op::Apply => ex.apply(plan),
            Op::Resume => ex.resume(),
            Op::Rollback => ex.rollback(None),
        }
    }
}

/// Runs `op` on an executor over `state` with `fault` at every fault point.
fn execute(
    state: &Path,
    plan: &Plan,
    op: Op,
    fault: &dyn Fn(&str) -> Result<(), certs::rollout::Error>,
) {
    let mut sink = |_: &Event| {};
    let mut ex = Executor {
        state_dir: state.to_path_buf(),
        restarter: &Ok_,
        prober: &Ok_,
        timing: Timing {
            deadline: Duration::from_millis(50),
            interval: Duration::from_millis(10),
        },
        now: &|| 1_800_000_000,
        on_event: &mut sink,
        fault,
        etcd: &certs::rollout::membership::NoEtcd,
    };
    op.run(&mut ex, plan).unwrap();
}

/// Runs `op` over `state` to its end, in this process: how many fault points it passed.
fn points(state: &Path, plan: &Plan, op: Op) -> usize {
    let calls = Cell::new(0);
    execute(state, plan, op, &|_| {
        calls.set(calls.get() + 1);
        Ok(())
    });
    calls.get()
}

/// Runs `op` over `state` in a child process (this test binary, [`kill_child`]) that
/// SIGKILLs itself (`kill -9`) at its `k`-th fault point: no destructor, no unwinding,
/// the files and the journal exactly as they are at that instant.
fn kill(state: &Path, plan_file: &Path, op: Op, k: usize) {
    use std::os::unix::process::ExitStatusExt;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "rollout_hardening::killed::kill_child",
            "--ignored",
            "--nocapture",
        ])
        .env("CERTS_KILL_STATE", state)
        .env("CERTS_KILL_PLAN", plan_file)
        .env("CERTS_KILL_OP", op.name())
        .env("CERTS_KILL_AT", k.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "{} killed at {k}: {status:?}",
        op.name()
    );
}

/// The child [`kill`] runs: only with its environment set (skipped otherwise).
#[test]
#[ignore = "run by the kill test in a child process"]
fn kill_child() {
    let Ok(state) = std::env::var("CERTS_KILL_STATE") else {
        return;
    };
    let plan: Plan =
        serde_json::from_slice(&std::fs::read(std::env::var("CERTS_KILL_PLAN").unwrap()).unwrap())
            .unwrap();
    let op = match std::env::var("CERTS_KILL_OP").unwrap().as_str() {
        "apply" => Op::Apply,
        "resume" => Op::Resume,
        _ => Op::Rollback,
    };
    let at: usize = std::env::var("CERTS_KILL_AT").unwrap().parse().unwrap();
    let calls = Cell::new(0);
    execute(Path::new(&state), &plan, op, &|_| {
        if calls.get() == at {
            // The shell's own `kill` (no procps needed): its parent is this process.
            let _ = std::process::Command::new("sh")
                .args(["-c", "kill -9 $PPID"])
                .status();
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        calls.set(calls.get() + 1);
        Ok(())
    });
    panic!("{} ended before its fault point {at}", op.name());
}

/// The node back as it was, a fresh state dir.
fn reset(n: &Node, original: &[(PathBuf, Vec<u8>)], state: &Path) {
    let _ = std::fs::remove_dir_all(state);
    std::fs::create_dir(state).unwrap();
    for (p, b) in original {
        std::fs::write(p, b).unwrap();
    }
    for e in std::fs::read_dir(&n.pki).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".certs-tmp") {
            std::fs::remove_file(p).unwrap();
        }
    }
}

/// After a kill: `status` tells the truth (exit 0 only with every pair new, a mixed pair
/// named), then `verb` from the binary ends with every pair all-old or all-new.
fn recover(n: &Node, state: &Path, verb: &str, what: &str) {
    let st = n.rollout("status", state, &[]);
    let mixed = PAIRS.iter().any(|(crt, key)| {
        let is_new = |name: &str| {
            std::fs::read(n.pki.join(name)).unwrap() == std::fs::read(n.bundle.join(name)).unwrap()
        };
        is_new(crt) != is_new(key)
    });
    assert!(!st.stdout.contains("in progress"), "{what}: {}", st.stdout);
    if st.stdout.contains("no rollout recorded") {
        // Killed before the first journal write: nothing was changed.
        assert_eq!(st.code, 0);
        assert_eq!(n.pairs_consistent(), 0, "{what}: no journal, files changed");
        let r = n.rollout(verb, state, &[]);
        assert_eq!(r.code, 2, "{what}: {verb}: {}{}", r.stdout, r.stderr);
        return;
    }
    if mixed {
        assert_ne!(
            st.code, 0,
            "{what}: a mixed pair, status exit 0\n{}",
            st.stdout
        );
        assert!(st.stdout.contains("old but"), "{what}: {}", st.stdout);
    }
    if st.code == 0 {
        assert_eq!(n.pairs_consistent(), 2, "{what}: status 0\n{}", st.stdout);
    }
    let r = n.rollout(verb, state, &[]);
    let done = r.code == 0
            // Killed before a rollback changed anything: the rollout is still Done.
            || (verb == "resume" && r.code == 2 && st.code == 0);
    assert!(done, "{what}: {verb}: {}{}", r.stdout, r.stderr);
    let new = n.pairs_consistent();
    // rollback, or a resume that finished an interrupted rollback: every pair old.
    let rolled_back = verb == "rollback" || (r.code == 0 && r.stdout.contains("rolled back"));
    let want = if rolled_back { 0 } else { 2 };
    assert_eq!(new, want, "{what}: {verb}: {}", r.stdout);
    let after = n.rollout("status", state, &[]);
    assert_eq!(
        after.code,
        if want == 0 { 3 } else { 0 },
        "{what}: status after {verb}: {}",
        after.stdout
    );
}

#[test]
fn a_kill_at_every_journal_transition_of_apply_resume_and_rollback_is_recovered() {
    let n = node();
    let state = n.dir.path().join("state");
    let original: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&n.pki)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    let plan = plan(&n);
    let plan_file = n.dir.path().join("plan.json");
    std::fs::write(&plan_file, serde_json::to_vec(&plan).unwrap()).unwrap();
    reset(&n, &original, &state);
    let apply_points = points(&state, &plan, Op::Apply);
    assert!(apply_points >= 10, "{apply_points} points");
    let mut kills = 0;
    for verb in ["resume", "rollback"] {
        // apply, killed at each point.
        for k in 0..apply_points {
            reset(&n, &original, &state);
            kill(&state, &plan_file, Op::Apply, k);
            recover(&n, &state, verb, &format!("apply killed at {k}"));
            kills += 1;
        }
        // resume of an apply killed in the second step, killed at each point.
        let mid = apply_points - 4;
        reset(&n, &original, &state);
        kill(&state, &plan_file, Op::Apply, mid);
        let resume_points = points(&state, &plan, Op::Resume);
        for k in 0..resume_points {
            reset(&n, &original, &state);
            kill(&state, &plan_file, Op::Apply, mid);
            kill(&state, &plan_file, Op::Resume, k);
            recover(&n, &state, verb, &format!("resume killed at {k}"));
            kills += 1;
        }
        // rollback of a done rollout, killed at each point.
        reset(&n, &original, &state);
        points(&state, &plan, Op::Apply);
        let rollback_points = points(&state, &plan, Op::Rollback);
        assert!(rollback_points >= 3, "{rollback_points} rollback points");
        for k in 0..rollback_points {
            reset(&n, &original, &state);
            points(&state, &plan, Op::Apply);
            kill(&state, &plan_file, Op::Rollback, k);
            recover(&n, &state, verb, &format!("rollback killed at {k}"));
            kills += 1;
        }
    }
    eprintln!("{kills} kills recovered");
}
