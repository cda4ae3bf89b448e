//! `certs cluster rotate-ca STAGE`: the playbooks it renders, run by real `ansible-playbook` on
//! the three simulated hosts of tests/cli/cluster/ (`ansible_connection: local`, a node root per
//! host as `certs_root`, state directories outside the roots) around the REAL three-member TLS
//! etcd of tests/cli/etcd/: the etcd CA rotated through trust, switch and finish, one playbook
//! run per stage, while a client reading node 1's CA file on every call writes; and a `finish`
//! refused on every host while one host still has a leaf of the old CA.

use std::path::{Path, PathBuf};

use super::etcd_ca::{served, Writer};
use super::s;
use super::stages::files_holding;
use crate::cluster::{ansible_playbook, key_copies, recap, Hosts};
use crate::etcd::{write_node_root, EtcdCluster, Form, MEMBERS, NODE_PKI};
use crate::util::{certs, fixture, tree_digest};

/// The inventory with each host's `certs_state_dir` at `<work>/state-N`, outside its root.
fn with_state_dirs(inventory: &Path, roots: &[PathBuf], work: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(inventory).unwrap();
    for (i, root) in roots.iter().enumerate() {
        let line = format!("      certs_root: {}\n", s(root));
        assert!(text.contains(&line), "{text}");
        text = text.replace(
            &line,
            &format!(
                "{line}      certs_state_dir: {}\n",
                s(&work.join(format!("state-{}", i + 1)))
            ),
        );
    }
    let file = work.join("hosts-rotate.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// Renders `certs cluster rotate-ca STAGE` into `<work>/rotate-STAGE` and syntax-checks it.
fn render(work: &Path, inventory: &Path, old: &Path, stage: &str, extra: &[String]) -> PathBuf {
    let out = work.join(format!("rotate-{stage}"));
    let mut argv: Vec<String> = vec![
        "cluster".into(),
        "rotate-ca".into(),
        stage.into(),
        "--inventory".into(),
        s(inventory),
        "--ca-cert".into(),
        s(old),
        "--certs-binary".into(),
        env!("CARGO_BIN_EXE_certs").into(),
        "--out".into(),
        s(&out),
    ];
    argv.extend(extra.iter().cloned());
    let run = certs(&argv);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (ok, log) = ansible_playbook(&out, inventory, &["--syntax-check"]);
    assert!(ok, "{log}");
    out
}

/// `certs rotate-ca status` of node root `root`, against the CA copies the playbook left in the
/// host's state directory.
fn stage_of(root: &Path, state: &Path) -> String {
    let rot = state.join("rotate-ca");
    let r = certs([
        "rotate-ca",
        "status",
        &s(&rot.join("old-ca.pem")),
        "--root",
        &s(root),
        "--new-ca",
        &s(&rot.join("new-ca.pem")),
        "-o",
        "json",
    ]);
    r.json()["stage"].as_str().unwrap().to_string()
}

fn der_of(pem_file: &Path) -> Vec<u8> {
    pem::parse(std::fs::read(pem_file).unwrap())
        .unwrap()
        .into_contents()
}

#[test]
fn the_etcd_ca_of_a_real_cluster_rotates_through_certs_cluster_without_a_failed_write() {
    let src = fixture("etcd-loopback");
    let cluster = EtcdCluster::start_nodes(&src.path().join(NODE_PKI), Form::Flags);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let hosts = Hosts::new(&cluster, w);
    let roots: Vec<PathBuf> = (1..=MEMBERS).map(|n| hosts.root(n).to_path_buf()).collect();
    let inventory = with_state_dirs(&hosts.inventory(&cluster), &roots, w);
    let state = |n: usize| w.join(format!("state-{n}"));
    let old = w.join("old-etcd-ca.pem");
    std::fs::copy(cluster.node_pki(1).join("ca.pem"), &old).unwrap();
    let old_der = der_of(&old);

    let writer = Writer::start(cluster.node_pki(1));
    for (stage, after) in [
        ("trust", "trusted"),
        ("switch", "switched"),
        ("finish", "finished"),
    ] {
        let pb = render(w, &inventory, &old, stage, &[]);
        let (ok, log) = ansible_playbook(&pb, &inventory, &[]);
        assert!(ok, "{stage}: {log}\n{}", cluster.logs());
        let r = recap(&log);
        assert_eq!(r.len(), MEMBERS, "{log}");
        assert!(r.iter().all(|(_, c, f)| *c > 0 && *f == 0), "{r:?}\n{log}");
        for n in 1..=MEMBERS {
            // Each node's status, reported in the playbook's output and read from its files.
            assert!(
                log.contains(&format!("node{n}: stage {after} after {stage}")),
                "{stage}: node{n}\n{log}"
            );
            assert_eq!(stage_of(hosts.root(n), &state(n)), after, "node{n}");
        }
        // Once more: nothing changes on any host, and the recap says so.
        let (ok, again) = ansible_playbook(&pb, &inventory, &[]);
        assert!(ok, "{stage} again: {again}");
        let r = recap(&again);
        assert_eq!(r.len(), MEMBERS, "{again}");
        assert!(
            r.iter().all(|(_, c, f)| *c == 0 && *f == 0),
            "{stage} again: {r:?}\n{again}"
        );
        if stage == "trust" {
            // One new CA, made on the CA host: every node trusts that same certificate.
            let made = state(1).join("rotate-ca/new-ca/ca.pem");
            for n in 1..=MEMBERS {
                assert_eq!(
                    std::fs::read(state(n).join("rotate-ca/new-ca.pem")).unwrap(),
                    std::fs::read(&made).unwrap(),
                    "node{n}"
                );
                assert!(!state(n).join("rotate-ca/new-ca").exists() || n == 1);
            }
        }
    }
    let (ok, failed) = writer.stop();
    assert!(
        failed.is_empty(),
        "{} failed write(s): {failed:?}\n{}",
        failed.len(),
        cluster.logs()
    );
    assert!(ok > 20, "too few writes ({ok})");
    eprintln!("certs cluster rotate-ca etcd: {ok} writes, 0 failed");

    let new_ca = state(1).join("rotate-ca/new-ca/ca.pem");
    let new_key = state(1).join("rotate-ca/new-ca/ca-key.pem");
    for n in 1..=MEMBERS {
        let leaf = served(n, &cluster.node_pki(1), w);
        assert!(
            super::verify(&new_ca, &leaf),
            "member {n} serves a leaf of the new CA"
        );
        assert!(!super::verify(&old, &leaf), "member {n}: not of the old CA");
        assert_eq!(
            files_holding(hosts.root(n), &old_der),
            Vec::<PathBuf>::new(),
            "node{n}: no file holds the old CA"
        );
    }
    // The new CA key is on the CA host only: its new-ca directory, its signing key (switch made
    // it node1's ca-key.pem), that stage's bundle and rollout state there; nowhere else.
    let key = std::fs::read(&new_key).unwrap();
    assert_eq!(
        std::fs::read(hosts.root(1).join(NODE_PKI).join("ca-key.pem")).unwrap(),
        key
    );
    let places: Vec<&Path> = vec![w, hosts.root(2), hosts.root(3)];
    let off_host: Vec<PathBuf> = key_copies(&places, &key)
        .into_iter()
        .filter(|p| !p.starts_with(state(1)) && !p.starts_with(hosts.root(1)))
        .collect();
    assert!(
        off_host.is_empty(),
        "the new CA key off the CA host: {off_host:?}"
    );
}

/// Each host's "etcd": an openssl s_server on 127.0.0.1N serving the node's member certificate
/// (and `/health`), restarted from the node's files by `restart-etcd-N.sh`, so the rollout's
/// gate proves what it serves. Stopped on drop.
struct Servers(Vec<PathBuf>);

impl Drop for Servers {
    fn drop(&mut self) {
        for pid in &self.0 {
            if let Ok(p) = std::fs::read_to_string(pid) {
                let _ = std::process::Command::new("kill").arg(p.trim()).status();
            }
        }
    }
}

fn serve_members(w: &Path, roots: &[PathBuf]) -> (Servers, Vec<Vec<String>>) {
    use std::os::unix::fs::PermissionsExt;
    let www = w.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("health"), "{\"health\":\"true\"}").unwrap();
    let mut pids = Vec::new();
    let mut args = Vec::new();
    for (i, root) in roots.iter().enumerate() {
        let n = i + 1;
        let addr = format!("127.0.0.1{n}");
        let port = std::net::TcpListener::bind((addr.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pki = root.join(NODE_PKI);
        let pid = w.join(format!("etcd-{n}.pid"));
        let script = w.join(format!("restart-etcd-{n}.sh"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\np=$(cat '{pid}' 2>/dev/null)\n[ -n \"$p\" ] && kill \"$p\" 2>/dev/null\ni=0; while [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done\ncd '{www}' && setsid openssl s_server -quiet -WWW -accept {addr}:{port} -cert '{pki}/member-etcd{n}.pem' -key '{pki}/member-etcd{n}-key.pem' </dev/null >>'{w}/s_server-{n}.log' 2>&1 &\necho $! >'{pid}'\n",
                pid = s(&pid),
                www = s(&www),
                pki = s(&pki),
                w = s(w),
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(std::process::Command::new(&script)
            .status()
            .unwrap()
            .success());
        pids.push(pid);
        args.push(vec![
            "--restart-cmd".to_string(),
            format!("etcd={}", s(&script)),
            "--health".into(),
            format!("etcd=https://{addr}:{port}/health"),
            "--health-interval".into(),
            "100ms".into(),
            "--health-timeout".into(),
            "20s".into(),
        ]);
    }
    (Servers(pids), args)
}

/// Three node roots of the fixture whose "etcd" is an openssl s_server ([`serve_members`]), the
/// CA key on node1 only, and an inventory over them.
fn quiet_hosts(w: &Path) -> (PathBuf, Vec<PathBuf>, Servers) {
    let src = fixture("etcd-loopback");
    let roots: Vec<PathBuf> = (1..=MEMBERS)
        .map(|n| {
            let root = w.join(format!("node{n}"));
            write_node_root(&root, n, Form::Flags, &src.path().join(NODE_PKI));
            std::fs::create_dir_all(w.join(format!("state-{n}"))).unwrap();
            if n > 1 {
                std::fs::remove_file(root.join(NODE_PKI).join("ca-key.pem")).unwrap();
            }
            root
        })
        .collect();
    let (servers, rollout_args) = serve_members(w, &roots);
    let mut hosts = String::new();
    for (i, root) in roots.iter().enumerate() {
        let n = i + 1;
        hosts.push_str(&format!(
            "    node{n}:\n      ansible_connection: local\n      ansible_python_interpreter: /usr/bin/python3\n      ip: 127.0.0.1{n}\n      certs_root: {root}\n      certs_bin: {state}/certs\n      certs_state_dir: {state}\n      certs_rollout_args: {args}\n",
            root = s(root),
            state = s(&w.join(format!("state-{n}"))),
            args = serde_json::to_string(&rollout_args[i]).unwrap(),
        ));
    }
    let inventory = w.join("hosts.yaml");
    std::fs::write(
        &inventory,
        format!("all:\n  hosts:\n{hosts}  children:\n    kube_control_plane:\n      hosts:\n        node1:\n        node2:\n        node3:\n    etcd:\n      hosts:\n        node1:\n        node2:\n        node3:\n"),
    )
    .unwrap();
    (inventory, roots, servers)
}

#[test]
fn finish_through_certs_cluster_is_refused_on_every_host_while_one_still_has_an_old_leaf() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (inventory, roots, _servers) = quiet_hosts(w);
    let old = w.join("old-etcd-ca.pem");
    std::fs::copy(roots[0].join(NODE_PKI).join("ca.pem"), &old).unwrap();
    let member3 = roots[2].join(NODE_PKI).join("member-etcd3.pem");
    let old_member3 = std::fs::read(&member3).unwrap();
    // The new CA given (made beforehand on the CA host, node1): every node gets that one, and
    // none is made.
    let given = w.join("given-ca");
    let made = certs([
        "cluster",
        "rotate-ca-new-ca",
        "--ca-cert",
        &s(&old),
        "--root",
        &s(&roots[0]),
        "--dir",
        &s(&given),
        "--make",
        "-o",
        "json",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let made = made.json();
    let new_ca = PathBuf::from(made["certificate"].as_str().unwrap());
    let with = vec![
        "--new-ca".to_string(),
        s(&new_ca),
        "--new-ca-key".into(),
        made["key"].as_str().unwrap().to_string(),
    ];
    for stage in ["trust", "switch"] {
        let pb = render(w, &inventory, &old, stage, &with);
        let (ok, log) = ansible_playbook(&pb, &inventory, &[]);
        assert!(ok, "{stage}: {log}");
    }
    for n in 1..=MEMBERS {
        let state = w.join(format!("state-{n}"));
        assert_eq!(
            std::fs::read(state.join("rotate-ca/new-ca.pem")).unwrap(),
            std::fs::read(&new_ca).unwrap(),
            "node{n}"
        );
        assert!(!state.join("rotate-ca/new-ca").exists(), "node{n}");
        assert_eq!(stage_of(&roots[n - 1], &state), "switched", "node{n}");
    }
    // node3's member certificate put back as it was (restored by hand from a backup): a leaf of
    // the old CA on one host.
    std::fs::write(&member3, &old_member3).unwrap();
    let before: Vec<_> = roots.iter().map(|r| tree_digest(r)).collect();
    let pb = render(w, &inventory, &old, "finish", &with);
    let (ok, log) = ansible_playbook(&pb, &inventory, &[]);
    assert!(!ok, "{log}");
    assert!(
        log.contains("node3: refusing to finish on any node: 1 leaf(s)")
            && log.contains("member-etcd3.pem"),
        "{log}"
    );
    // Refused before any host changed: node1 and node2 (checked first, nothing wrong there)
    // still hold the old CA, and every file of every host is as it was.
    let after: Vec<_> = roots.iter().map(|r| tree_digest(r)).collect();
    assert_eq!(after, before, "{log}");
    assert!(!log.contains("Certs rollout apply"), "{log}");
    let old_der = der_of(&old);
    for root in &roots[..2] {
        assert!(!files_holding(root, &old_der).is_empty());
    }
}

/// Bad input to `certs cluster rotate-ca` and its CA-host steps: one line (what was expected,
/// what was found), exit 2, nothing written.
#[test]
fn cluster_rotate_ca_refusals_are_one_line_and_write_nothing() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = fixture("etcd-loopback");
    let root = w.join("node1");
    write_node_root(&root, 1, Form::Flags, &src.path().join(NODE_PKI));
    let pki = root.join(NODE_PKI);
    let inventory = w.join("hosts.ini");
    std::fs::write(
        &inventory,
        "[all]\nnode1 ip=127.0.0.11\n[kube_control_plane]\nnode1\n[etcd]\nnode1\n",
    )
    .unwrap();
    let out = w.join("pb");
    let refused = |args: &[&str], why: &str| {
        let r = certs(args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
        assert!(!out.exists(), "{args:?}");
    };
    let (inv, ca, leaf) = (
        s(&inventory),
        s(&pki.join("ca.pem")),
        s(&pki.join("member-etcd1.pem")),
    );
    let render = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "cluster",
            "rotate-ca",
            "trust",
            "--inventory",
            &inv,
            "--out",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        v.push(s(&out));
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let args = render(&["--ca-cert", &leaf]);
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "expected CA certificates (basicConstraints CA:TRUE), found a leaf",
    );
    let args = render(&["--ca-cert", &ca, "--ca-host", "node9"]);
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "--ca-host node9: expected a host of the inventory",
    );
    let args = render(&[
        "--ca-cert",
        &ca,
        "--new-ca",
        "new/ca.pem",
        "--new-ca-key",
        "new/ca-key.pem",
    ]);
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "--new-ca: expected an absolute path on the CA host, found `new/ca.pem`",
    );
    let args = render(&["--ca-cert", &ca, "--new-ca", &ca]);
    refused(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "--new-ca-key",
    );

    let new_dir = w.join("new-ca");
    let made = certs([
        "cluster",
        "rotate-ca-new-ca",
        "--ca-cert",
        &ca,
        "--root",
        &s(&root),
        "--dir",
        &s(&new_dir),
        "--make",
        "-o",
        "json",
    ]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    let made = made.json();
    assert_eq!(made["changed"], true);
    // Asked again: the same CA, nothing made.
    let again = certs([
        "cluster",
        "rotate-ca-new-ca",
        "--ca-cert",
        &ca,
        "--root",
        &s(&root),
        "--dir",
        &s(&new_dir),
        "--make",
        "-o",
        "json",
    ])
    .json();
    assert_eq!(again["changed"], false);
    assert_eq!(again["certificate"], made["certificate"]);
    // The CA host signs leaves of the old CA only: a CA certificate given as a leaf is refused,
    // nothing written.
    let signed = w.join("signed.pem");
    let r = certs([
        "cluster",
        "rotate-ca-sign",
        "--leaves",
        &ca,
        "--ca-cert",
        &ca,
        "--new-ca",
        made["certificate"].as_str().unwrap(),
        "--new-ca-key",
        made["key"].as_str().unwrap(),
        "--out",
        &s(&signed),
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("expected a leaf of the CA being replaced (`"),
        "{}",
        r.stderr
    );
    assert!(!signed.exists());
    // Without --make (a later stage) and no new CA there: refused, nothing made.
    let none = w.join("none");
    let r = certs([
        "cluster",
        "rotate-ca-new-ca",
        "--ca-cert",
        &ca,
        "--root",
        &s(&root),
        "--dir",
        &s(&none),
    ]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("the trust stage makes it"),
        "{}",
        r.stderr
    );
    assert!(!none.exists());
}
