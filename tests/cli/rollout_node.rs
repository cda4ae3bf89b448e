//! `certs rollout` on node roots (see tests/cli/etcd/): three nodes, each a fake `/` whose
//! `etcd.service` (flags, or `/etc/etcd.env`) is what its member of a REAL etcd cluster runs
//! with. Given only `--root`, the tool must find from those files that component `etcd` uses the
//! member certificate, and derive its health gate (URL, CA, client certificate); rolled node by
//! node while a client writes, no request fails. Without `--restart-cmd` it restarts through
//! `systemctl` with the unit named by the node. A gate that cannot pass is refused before
//! anything changes.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::etcd::{write_node_root, EtcdCluster, Form, MEMBERS, NODE_PKI};
use crate::util::{certs, certs_env, file_serial, fixture, path_with, s, tree_digest, Run};

/// The certificates the node roots are made from.
fn source_pki() -> tempfile::TempDir {
    fixture("etcd-loopback")
}

/// `certs reissue <root>/etc/ssl/etcd/ssl/member-etcdN.pem --add-san etcd.cluster.example
/// --out BUNDLE EXTRA…`; panics unless it exits 0.
fn reissue(root: &Path, n: usize, bundle: &Path, extra: &[&str]) {
    let cert = root.join(NODE_PKI).join(format!("member-etcd{n}.pem"));
    let mut args = vec![
        "reissue".to_string(),
        s(&cert),
        "--add-san".into(),
        "etcd.cluster.example".into(),
        "--out".into(),
        s(bundle),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let run = certs(&args);
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
}

/// `new_serial` of `member-etcdN.pem` in the bundle's `bundle.json`.
fn new_serial(bundle: &Path, n: usize) -> String {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["bundle_path"] == format!("member-etcd{n}.pem"))
        .unwrap_or_else(|| panic!("no member-etcd{n}.pem in {manifest:#}"))["new_serial"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `certs rollout plan BUNDLE --root ROOT EXTRA…`.
fn plan(bundle: &Path, root: &Path, extra: &[String]) -> Run {
    let mut args = vec![
        "rollout".to_string(),
        "plan".into(),
        s(bundle),
        "--root".into(),
        s(root),
    ];
    args.extend(extra.iter().cloned());
    certs(&args)
}

/// `rollout apply BUNDLE --root ROOT --state-dir STATE --health-interval 500ms
/// --health-timeout 60s EXTRA…` (no `--health`, no `--profile` unless in EXTRA).
fn apply_args(bundle: &Path, root: &Path, state: &Path, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "rollout".to_string(),
        "apply".into(),
        s(bundle),
        "--root".into(),
        s(root),
        "--state-dir".into(),
        s(state),
        "--health-interval".into(),
        "500ms".into(),
        "--health-timeout".into(),
        "60s".into(),
    ];
    args.extend(extra.iter().cloned());
    args
}

/// The plan of node `n` names component `etcd` first, gated on the member's client URL with the
/// node's CA and a client certificate of the node (client-cert-auth is on).
fn check_plan(bundle: &Path, root: &Path, n: usize) {
    let run = plan(bundle, root, &["-o".into(), "json".into()]);
    assert_eq!(
        run.code, 0,
        "plan of node {n}: {}{}",
        run.stdout, run.stderr
    );
    let plan = run.json();
    let step = &plan["steps"][0];
    assert_eq!(step["component"], "etcd", "node {n}: {plan:#}");
    let gate = &step["gates"][0];
    assert_eq!(
        gate["url"],
        format!("https://127.0.0.1{n}:2379"),
        "node {n}: {plan:#}"
    );
    for part in ["cert", "key"] {
        let path = gate["client"][part]
            .as_str()
            .unwrap_or_else(|| panic!("node {n}: no client {part} in the gate: {plan:#}"));
        assert!(
            Path::new(path).starts_with(root),
            "node {n}: client {part} {path} is not under the node root {}",
            root.display()
        );
    }
    assert!(!gate["trust"].is_null(), "node {n}: no trust: {plan:#}");
    let ca = s(&root.join(NODE_PKI).join("ca.pem"));
    assert!(
        gate.to_string().contains(&ca),
        "node {n}: the gate does not name {ca}: {plan:#}"
    );
}

/// The words of a logged systemctl call that are not flags.
fn words(call: &str) -> Vec<&str> {
    call.split_whitespace()
        .filter(|w| !w.starts_with('-'))
        .collect()
}

fn is_etcd(unit: &str) -> bool {
    unit == "etcd" || unit == "etcd.service"
}

/// Three `apply` calls, one per node, while a client writes.
fn rolls_three_nodes(form: Form) {
    let src = source_pki();
    let cluster = EtcdCluster::start_nodes(&src.path().join(NODE_PKI), form);
    let work = tempfile::tempdir().unwrap();
    let bundles: Vec<PathBuf> = (1..=MEMBERS)
        .map(|n| {
            let bundle = work.path().join(format!("bundle-{n}"));
            reissue(cluster.node_root(n), n, &bundle, &[]);
            check_plan(&bundle, cluster.node_root(n), n);
            bundle
        })
        .collect();

    let load = cluster.spawn_client();
    let mut runs = Vec::new();
    for n in 1..=MEMBERS {
        let state = work.path().join(format!("state-{n}"));
        let extra = [
            "--restart-cmd".to_string(),
            format!("etcd={}", cluster.restart_cmd(n)),
        ];
        let run = certs(apply_args(
            &bundles[n - 1],
            cluster.node_root(n),
            &state,
            &extra,
        ));
        let failed = run.code != 0;
        runs.push(run);
        if failed {
            break;
        }
    }
    let report = load.stop();
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(
            run.code,
            0,
            "apply on node {}: {}{}\n{}",
            i + 1,
            run.stdout,
            run.stderr,
            cluster.logs()
        );
    }
    assert_eq!(
        report.failed, 0,
        "client saw failures: {:?}",
        report.failures
    );
    assert!(report.ok > 20, "too few client requests ({})", report.ok);
    for n in 1..=MEMBERS {
        let serial = new_serial(&bundles[n - 1], n);
        assert_eq!(
            cluster.served_serial(n),
            serial,
            "member {n} does not serve its new certificate"
        );
        assert_eq!(
            file_serial(&cluster.node_pki(n).join(format!("member-etcd{n}.pem"))),
            serial
        );
    }
    let health = cluster.etcdctl(&["endpoint", "health"]);
    assert!(
        health.status.success(),
        "{}{}",
        String::from_utf8_lossy(&health.stdout),
        String::from_utf8_lossy(&health.stderr)
    );
}

#[test]
fn plan_derives_the_etcd_gate_from_each_node_s_unit() {
    let src = source_pki();
    let work = tempfile::tempdir().unwrap();
    for form in [Form::Flags, Form::Env] {
        for n in 1..=MEMBERS {
            let root = work.path().join(format!("{form:?}-node{n}"));
            write_node_root(&root, n, form, &src.path().join(NODE_PKI));
            let bundle = work.path().join(format!("{form:?}-bundle-{n}"));
            reissue(&root, n, &bundle, &[]);
            let before = tree_digest(&root);
            check_plan(&bundle, &root, n);
            assert_eq!(
                before,
                tree_digest(&root),
                "{form:?} node {n}: plan changed it"
            );
        }
    }
}

#[test]
fn rolls_three_flag_nodes_without_a_failed_request() {
    rolls_three_nodes(Form::Flags);
}

#[test]
fn rolls_three_env_file_nodes_without_a_failed_request() {
    rolls_three_nodes(Form::Env);
}

#[test]
fn restarts_through_systemctl_with_the_unit_the_node_names() {
    let src = source_pki();
    let cluster = EtcdCluster::start_nodes(&src.path().join(NODE_PKI), Form::Flags);
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundle-1");
    reissue(cluster.node_root(1), 1, &bundle, &[]);
    let before = cluster.pid(1).expect("member 1 runs");

    let run = certs_env(
        apply_args(
            &bundle,
            cluster.node_root(1),
            &work.path().join("state-1"),
            &[],
        ),
        &[("PATH", path_with(&cluster.fake_bin(1)))],
    );
    let calls = cluster.systemctl_calls(1);
    assert_eq!(
        run.code,
        0,
        "{}{}\nsystemctl calls: {calls:?}\n{}",
        run.stdout,
        run.stderr,
        cluster.logs()
    );
    let restart = calls
        .iter()
        .position(|c| matches!(words(c)[..], ["restart", unit] if is_etcd(unit)))
        .unwrap_or_else(|| panic!("no `systemctl restart etcd` among {calls:?}"));
    assert!(
        calls[restart..].iter().any(|c| {
            matches!(words(c)[..], ["is-active", unit] if is_etcd(unit))
                && c.split_whitespace().any(|w| w == "--quiet")
        }),
        "no `systemctl is-active --quiet etcd` after the restart: {calls:?}"
    );
    let after = cluster.pid(1).expect("member 1 runs again");
    assert_ne!(before, after, "member 1 was not restarted");
    assert_eq!(cluster.served_serial(1), new_serial(&bundle, 1));
    assert!(cluster.member_health(1));
}

#[test]
fn a_gate_that_cannot_pass_is_refused_before_anything_changes() {
    // No cluster: the refusal must come before any probe, restart or backup.
    let src = source_pki();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("node1");
    write_node_root(&root, 1, Form::Flags, &src.path().join(NODE_PKI));
    let pki = root.join(NODE_PKI);
    let bundle = work.path().join("bundle");
    reissue(&root, 1, &bundle, &[]);
    let no_loopback = work.path().join("bundle-without-127.0.0.1");
    reissue(&root, 1, &no_loopback, &["--drop-san", "127.0.0.1"]);
    let marker = work.path().join("restarted");

    // The control: the same gate host is accepted while the new certificate covers it.
    let control = plan(
        &bundle,
        &root,
        &[
            "--health".into(),
            "etcd=https://127.0.0.1:2379/health".into(),
        ],
    );
    assert_eq!(control.code, 0, "{}{}", control.stdout, control.stderr);

    let health_cert = format!("etcd={}", s(&pki.join("admin-etcd1.pem")));
    let cases: [(&str, &Path, Vec<&str>, &str); 3] = [
        (
            "a port out of range",
            &bundle,
            vec!["--health", "etcd=https://127.0.0.11:99999/health"],
            "99999",
        ),
        (
            "a host the new certificate does not cover",
            &no_loopback,
            vec!["--health", "etcd=https://127.0.0.1:2379/health"],
            "127.0.0.1",
        ),
        (
            "a missing client key",
            &bundle,
            vec![
                "--health-cert",
                &health_cert,
                "--health-key",
                "etcd=/nonexistent",
            ],
            "/nonexistent",
        ),
    ];
    for (i, (what, bundle, extra, named)) in cases.into_iter().enumerate() {
        let extra: Vec<String> = extra.into_iter().map(String::from).collect();
        let before = tree_digest(&root);
        let state = work.path().join(format!("state-{i}"));

        let run = plan(bundle, &root, &extra);
        assert_eq!(run.code, 2, "plan, {what}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(named),
            "plan, {what}: expected `{named}` in: {}",
            run.stderr
        );

        let mut args = vec![
            "--restart-cmd".to_string(),
            format!("etcd=touch {}", s(&marker)),
        ];
        args.extend(extra);
        let run = certs(apply_args(bundle, &root, &state, &args));
        assert_eq!(run.code, 2, "apply, {what}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains(named),
            "apply, {what}: expected `{named}` in: {}",
            run.stderr
        );
        assert!(!marker.exists(), "apply, {what}: the restart command ran");
        assert_eq!(
            before,
            tree_digest(&root),
            "apply, {what}: the node's files changed"
        );
        assert!(
            !state.join("backups").exists(),
            "apply, {what}: backups were made"
        );
        assert!(
            !state.join("lock").exists(),
            "apply, {what}: a lock was left"
        );
    }
}
