//! etcd membership as rollout steps (a master retirement): a bundle whose `bundle.json` carries
//! `"etcd_membership": {"remove": [...]}` (written by hand here; `certs change --retire` writes
//! it) is applied with `--root` of a kept node of a REAL three-member cluster (tests/cli/etcd.rs):
//! a snapshot of the keyspace into the state dir, leadership moved off the retired member when it
//! leads, `member remove`, the cluster healthy, and a client writing all along sees no failure.
//! Retirements that cannot pass are refused before anything is touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::etcd::{write_node_root, EtcdCluster, Form, NODE_PKI};
use crate::util::{certs, fixture, s, tree_digest, Run};

/// A bundle of no file whose bundle.json retires `remove` from etcd.
fn retirement_bundle(dir: &Path, remove: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let manifest = json!({
        "schema": "certs.bundle/v1",
        "created": "2026-11-29T00:00:00Z",
        "ca": {"certificate": "/etc/ssl/etcd/ssl/ca.pem", "subject": "CN=etcd-ca"},
        "files": [],
        "etcd_membership": {"remove": remove},
    });
    std::fs::write(
        dir.join("bundle.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir.to_path_buf()
}

fn rollout(verb: &str, bundle: &Path, root: &Path, state: &Path, extra: &[&str]) -> Run {
    let mut args = rollout_args(verb, bundle, root, state);
    args.extend(extra.iter().map(|a| a.to_string()));
    certs(&args)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `etcdctl member list`: (hex id, name) of each member.
fn members(cluster: &EtcdCluster) -> Vec<(String, String)> {
    let out = cluster.etcdctl(&["member", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(", ").collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect()
}

/// The endpoint whose member leads (`etcdctl endpoint status`, asked of each member that runs).
fn leader(cluster: &EtcdCluster, of: &[usize]) -> Option<String> {
    let eps: Vec<String> = of.iter().map(|&n| cluster.endpoint(n)).collect();
    let out = cluster.etcdctl(&[
        &format!("--endpoints={}", eps.join(",")),
        "endpoint",
        "status",
    ]);
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let f: Vec<&str> = l.split(", ").collect();
        (f.len() > 4 && f[4] == "true").then(|| f[0].to_string())
    })
}

/// `snapshot status FILE -w json` by etcdutl when installed, else etcdctl (3.4 has no etcdutl).
fn snapshot_status(file: &Path) -> Value {
    let has = |p: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let tool = if has("etcdutl") { "etcdutl" } else { "etcdctl" };
    let out = Command::new(tool)
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", &s(file), "-w", "json"])
        .output()
        .expect("etcdctl");
    assert!(
        out.status.success(),
        "{tool} snapshot status: {}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one snapshot a rollout saved in `state`: its path, its size, what `snapshot status` says
/// of it, and the journal's notes; checked: the note of the snapshot step gives its size, and
/// the revision recorded ("revision R", or "revision between A and B" when written to while
/// saved) holds the snapshot's.
fn saved_snapshot(state: &Path) -> (PathBuf, u64, Value, Vec<String>) {
    let snaps: Vec<PathBuf> = std::fs::read_dir(state.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let size = std::fs::metadata(&snaps[0]).unwrap().len();
    let status = snapshot_status(&snaps[0]);
    let journal: Value =
        serde_json::from_slice(&std::fs::read(state.join("journal.json")).unwrap()).unwrap();
    let notes: Vec<String> = journal["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    let saved = notes
        .iter()
        .find(|n| n.starts_with("etcd-membership: done: snapshot saved to"))
        .unwrap_or_else(|| panic!("{notes:?}"));
    assert!(
        saved.contains(&format!("{}: {size} bytes, revision", s(&snaps[0]))),
        "{saved}"
    );
    let revision = status["revision"].as_u64().unwrap();
    let numbers: Vec<u64> = saved
        .split("revision ")
        .nth(1)
        .unwrap()
        .split([' ', ','])
        .take(4)
        .filter_map(|w| w.parse().ok())
        .collect();
    let (lo, hi) = (numbers[0], *numbers.last().unwrap());
    assert!(
        lo <= revision && revision <= hi,
        "snapshot at revision {revision}, recorded: {saved}"
    );
    (snaps[0].clone(), size, status, notes)
}

/// `certs ARGS`, and the most memory it held (VmHWM, in bytes: read from /proc while it runs;
/// the mark only grows, and the steps after the snapshot keep it running a while).
fn certs_peak(args: &[String], out_dir: &Path) -> (crate::util::Run, u64) {
    let (out, err) = (out_dir.join("stdout"), out_dir.join("stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_certs"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("run certs");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let code = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            if let Some(kib) = hwm {
                peak = peak.max(kib * 1024);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let run = crate::util::Run {
        code,
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    };
    (run, peak)
}

fn rollout_args(verb: &str, bundle: &Path, root: &Path, state: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "rollout",
        verb,
        &s(bundle),
        "--root",
        &s(root),
        "--state-dir",
        &s(state),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    if verb == "apply" {
        args.extend(
            ["--health-interval", "500ms", "--health-timeout", "60s"]
                .iter()
                .map(|a| a.to_string()),
        );
    }
    args
}

/// A keyspace of several MiB, far more than one in-memory gateway answer (1 MiB) could carry:
/// the plan takes it, the snapshot is streamed into its file (larger than 2 MiB, read by etcd's
/// own tool at the revision recorded), and the memory the apply holds stays well below the
/// snapshot's size above what the plan holds.
#[test]
fn a_keyspace_of_several_mib_is_streamed_into_its_snapshot() {
    let src = fixture("etcd-loopback");
    let cluster = EtcdCluster::start_nodes(&src.path().join(NODE_PKI), Form::Flags);
    let work = tempfile::tempdir().unwrap();
    let bundle = retirement_bundle(&work.path().join("bundle"), &["etcd3"]);
    let state = work.path().join("state");
    let node1 = cluster.node_root(1);

    // 600 values of 8 KiB, each its own (so nothing on the way can shrink them), four writers.
    const KEYS: usize = 600;
    std::thread::scope(|scope| {
        for w in 0..4 {
            let cluster = &cluster;
            scope.spawn(move || {
                for i in (w..KEYS).step_by(4) {
                    let value: String = (0..8192)
                        .map(|j| char::from(b'!' + ((i * 7919 + j * 31 + j / 97) % 94) as u8))
                        .collect();
                    cluster
                        .put(&format!("/bulk/{i:04}"), &value)
                        .unwrap_or_else(|e| panic!("put {i}: {e}"));
                }
            });
        }
    });

    // The plan takes it (no refusal for its size), with the room there is for it.
    let plan = rollout("plan", &bundle, node1, &state, &["-o", "json"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let plan = plan.json();
    let db_size = plan["etcd"]["db_size"].as_u64().unwrap();
    assert!(db_size > 4 << 20, "{:#}", plan["etcd"]);
    assert!(
        plan["etcd"]["snapshot_room"].as_u64().unwrap() > db_size,
        "{:#}",
        plan["etcd"]
    );
    // What certs holds without a snapshot: the same plan, in text.
    let (base, base_peak) = certs_peak(&rollout_args("plan", &bundle, node1, &state), work.path());
    assert_eq!(base.code, 0, "{}{}", base.stdout, base.stderr);

    let (run, peak) = certs_peak(&rollout_args("apply", &bundle, node1, &state), work.path());
    assert_eq!(
        run.code,
        0,
        "{}{}\n{}",
        run.stdout,
        run.stderr,
        cluster.logs()
    );
    assert_eq!(members(&cluster).len(), 2);

    let (path, size, status, _) = saved_snapshot(&state);
    assert!(size > 2 << 20, "{}: {size} bytes", path.display());
    assert!(
        status["totalKey"].as_u64().unwrap() >= KEYS as u64,
        "{status}"
    );
    assert_eq!(
        status["totalSize"].as_u64(),
        Some(size - 32),
        "the database, then its SHA-256: {status}"
    );
    // Streamed: what the apply held above the plan is a small part of the snapshot (whole in
    // memory, it would be more than the snapshot, its base64 more again).
    eprintln!(
        "snapshot {size} bytes; peak memory: plan {base_peak}, apply {peak} (+{})",
        peak.saturating_sub(base_peak)
    );
    assert!(base_peak > 0 && peak > 0);
    assert!(
        peak < base_peak + size / 4,
        "apply peaked at {peak} bytes, the plan at {base_peak}: more than a quarter of the {size}-byte snapshot above it"
    );
    // No temp file is left beside it.
    let left: Vec<_> = std::fs::read_dir(state.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}

#[test]
fn retiring_the_leading_member_keeps_every_client_request() {
    let src = fixture("etcd-loopback");
    let cluster = EtcdCluster::start_nodes(&src.path().join(NODE_PKI), Form::Flags);
    let work = tempfile::tempdir().unwrap();
    let bundle = retirement_bundle(&work.path().join("bundle"), &["etcd3"]);
    let state = work.path().join("state");
    let node1 = cluster.node_root(1);
    let ids = members(&cluster);
    let id3 = ids.iter().find(|(_, n)| n == "etcd3").unwrap().0.clone();

    // A kept member down: removing etcd3 would leave etcd1 and etcd2 with one healthy, no
    // quorum. Refused, nothing touched.
    cluster.stop_member(2);
    for verb in ["plan", "apply"] {
        let run = rollout(verb, &bundle, node1, &state, &[]);
        assert_eq!(run.code, 2, "{verb}: {}{}", run.stdout, run.stderr);
        let quorum = run
            .stderr
            .lines()
            .find(|l| l.contains("etcd membership: removing etcd3 would lose quorum"))
            .unwrap_or_else(|| panic!("{verb}: {}", run.stderr));
        assert!(
            quorum.contains("only 1 of them healthy (etcd2 not)"),
            "{verb}: {quorum}"
        );
        assert!(!state.exists(), "{verb}: the state dir was created");
    }
    assert_eq!(members(&cluster).len(), 3);
    cluster.start_member(2);
    cluster.wait_all_healthy();

    // Leadership on the member to retire, so it must be moved first.
    let moved = cluster.etcdctl(&["move-leader", &id3]);
    assert!(moved.status.success(), "{}", text(&moved));
    assert_eq!(
        leader(&cluster, &[1, 2, 3]).as_deref(),
        Some("https://127.0.0.13:2379")
    );

    // The plan: three steps before any file step, each with its etcdctl line and TLS flags.
    let plan = rollout("plan", &bundle, node1, &state, &["-o", "json"]);
    assert_eq!(plan.code, 0, "{}{}", plan.stdout, plan.stderr);
    let plan = plan.json();
    let kinds: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["etcd-snapshot", "etcd-move-leader", "etcd-member-remove"],
        "{plan:#}"
    );
    let pki = node1.join(NODE_PKI);
    let tls = format!(
        "--cacert={} --cert={} --key={}",
        s(&pki.join("ca.pem")),
        s(&pki.join("member-etcd1.pem")),
        s(&pki.join("member-etcd1-key.pem"))
    );
    let manual: Vec<&str> = plan["etcd"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["manual"].as_str().unwrap())
        .collect();
    assert!(
        manual[0].starts_with(&format!("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.11:2379 {tls} snapshot save {}/snapshots/", s(&state))),
        "{}",
        manual[0]
    );
    assert!(
        manual[1].starts_with(&format!(
            "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.13:2379 {tls} move-leader "
        )),
        "{}",
        manual[1]
    );
    assert_eq!(
        manual[2],
        format!("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.11:2379,https://127.0.0.12:2379 {tls} member remove {id3}")
    );
    let text_plan = rollout("plan", &bundle, node1, &state, &[]);
    assert_eq!(text_plan.code, 0, "{}", text_plan.stderr);
    for m in &manual {
        assert!(
            text_plan.stdout.contains(&format!("by hand: {m}")),
            "{}",
            text_plan.stdout
        );
    }
    assert!(!state.exists(), "plan wrote into the state dir");

    let load = cluster.spawn_client();
    std::thread::sleep(Duration::from_secs(1));
    let run = rollout("apply", &bundle, node1, &state, &[]);
    std::thread::sleep(Duration::from_secs(2));
    let report = load.stop();
    assert_eq!(
        run.code,
        0,
        "{}{}\n{}",
        run.stdout,
        run.stderr,
        cluster.logs()
    );
    eprintln!("{}", run.stdout);

    // Member 3 is gone, the two kept members are healthy and one of them leads.
    let left = members(&cluster);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|(id, _)| *id != id3), "{left:?}");
    assert!(
        cluster.member_health(1) && cluster.member_health(2),
        "{}",
        cluster.logs()
    );
    let l = leader(&cluster, &[1, 2]);
    assert!(
        matches!(
            l.as_deref(),
            Some("https://127.0.0.11:2379" | "https://127.0.0.12:2379")
        ),
        "{l:?}"
    );
    assert_eq!(
        report.failed, 0,
        "the client saw failures: {:?}",
        report.failures
    );
    assert!(report.ok > 20, "too few client requests ({})", report.ok);

    // The snapshot: written, non-empty, readable by etcd's own tool, at the revision recorded.
    let (_, size, status, notes) = saved_snapshot(&state);
    assert!(size > 0);
    assert!(status["totalKey"].as_u64().unwrap() > 0, "{status}");
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("etcd-membership: done: leadership moved from etcd3")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("etcd-membership: done: member etcd3") && n.ends_with("removed")),
        "{notes:?}"
    );
    let status = certs(["rollout", "status", "--state-dir", &s(&state)]);
    assert_eq!(status.code, 0, "{}{}", status.stdout, status.stderr);
}

#[test]
fn retirements_that_cannot_pass_are_refused_before_anything_changes() {
    // No cluster of this test: the refusals come from the node (its --initial-cluster) or, if
    // another test's cluster answers on 127.0.0.11, from its member list; either way the same.
    let src = fixture("etcd-loopback");
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("node1");
    write_node_root(&root, 1, Form::Flags, &src.path().join(NODE_PKI));
    let pki = root.join(NODE_PKI);
    let cert = format!("etcd={}", s(&pki.join("admin-etcd1.pem")));
    let cases: [(&str, &[&str], Vec<&str>, &str); 4] = [
        ("no member named", &[], vec![], "names no member"),
        (
            "every member",
            &["etcd1", "etcd2", "127.0.0.13"],
            vec![],
            "would leave no etcd member",
        ),
        (
            "an unknown member",
            &["etcd9"],
            vec![],
            "`etcd9` is not a member",
        ),
        (
            "a client key that cannot be read",
            &["etcd3"],
            vec!["--health-cert", &cert, "--health-key", "etcd=/nonexistent"],
            "/nonexistent",
        ),
    ];
    for (i, (what, remove, extra, named)) in cases.into_iter().enumerate() {
        let bundle = retirement_bundle(&work.path().join(format!("bundle-{i}")), remove);
        let state = work.path().join(format!("state-{i}"));
        let before = tree_digest(&root);
        for verb in ["plan", "apply"] {
            let run = rollout(verb, &bundle, &root, &state, &extra);
            assert_eq!(run.code, 2, "{verb}, {what}: {}{}", run.stdout, run.stderr);
            let line = run
                .stderr
                .lines()
                .find(|l| l.contains(named))
                .unwrap_or_else(|| {
                    panic!("{verb}, {what}: no line with `{named}` in:\n{}", run.stderr)
                });
            assert!(line.contains("etcd membership: "), "{line}");
            assert_eq!(
                before,
                tree_digest(&root),
                "{verb}, {what}: the node changed"
            );
            assert!(!state.exists(), "{verb}, {what}: the state dir was created");
        }
    }

    // --no-etcd-membership leaves the steps out: nothing to refuse, nothing asked of etcd.
    let bundle = retirement_bundle(&work.path().join("bundle-out"), &["etcd2", "etcd3"]);
    let run = rollout(
        "plan",
        &bundle,
        &root,
        &work.path().join("state-out"),
        &["--no-etcd-membership", "-o", "json"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let plan = run.json();
    assert!(plan["steps"].as_array().unwrap().is_empty(), "{plan:#}");
    assert!(plan.get("etcd").is_none(), "{plan:#}");

    // A node that does not say how to reach etcd.
    let bare = work.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    let bundle = retirement_bundle(&work.path().join("bundle-bare"), &["etcd3"]);
    let run = rollout("plan", &bundle, &bare, &work.path().join("state-bare"), &[]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("etcd membership: this node runs no etcd"),
        "{}",
        run.stderr
    );
}
