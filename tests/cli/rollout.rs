//! `certs rollout` against a REAL three-member etcd cluster with TLS on 127.0.0.11-13: member
//! certificates reissued with a SAN edit and rolled out one member at a time while a client
//! keeps writing; failures rolled back; a killed rollout resumed or rolled back.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::etcd::EtcdCluster;
use crate::util::{certs, file_serial, fixture, openssl, s, tree_digest};

struct Setup {
    _dir: tempfile::TempDir,
    pki: PathBuf,
    bundle: PathBuf,
    state: PathBuf,
    cluster: EtcdCluster,
}

/// A running cluster and a bundle reissuing the three member certificates with a new SAN.
fn setup(reissue_extra: &[&str]) -> Setup {
    let dir = fixture("etcd-loopback");
    let pki = dir.path().join("etc/ssl/etcd/ssl");
    let cluster = EtcdCluster::start(&pki);
    let bundle = dir.path().join("bundle");
    let mut args: Vec<String> = vec!["reissue".into()];
    args.extend((1..=3).map(|n| s(&pki.join(format!("member-etcd{n}.pem")))));
    args.extend(["--add-san", "etcd.cluster.example", "--out"].map(String::from));
    args.push(s(&bundle));
    args.extend(reissue_extra.iter().map(|a| a.to_string()));
    let run = certs(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let state = dir.path().join("state");
    Setup {
        pki,
        bundle,
        state,
        cluster,
        _dir: dir,
    }
}

/// A profile with one component per member: its files, restart script and TLS health gate.
fn profile(setup: &Setup, restart: &dyn Fn(usize) -> String) -> PathBuf {
    let pki = &setup.pki;
    let components: Vec<Value> = (1..=3)
        .map(|n| {
            json!({
                "name": format!("etcd-{n}"),
                "kind": "etcd",
                "files": [pki.join(format!("member-etcd{n}.pem")), pki.join(format!("member-etcd{n}-key.pem"))],
                "restart": {"command": restart(n)},
                "health": [{
                    "url": format!("https://127.0.0.1{n}:2379"),
                    "path": "/health",
                    "expect": "\"health\":\"true\"",
                    "client_cert": pki.join("admin-etcd1.pem"),
                    "client_key": pki.join("admin-etcd1-key.pem"),
                    "serves": pki.join(format!("member-etcd{n}.pem")),
                }],
            })
        })
        .collect();
    let path = setup.bundle.parent().unwrap().join("profile.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&json!({"name": "etcd-loopback", "components": components}))
            .unwrap(),
    )
    .unwrap();
    path
}

fn apply(setup: &Setup, profile: &Path, extra: &[&str]) -> crate::util::Run {
    let mut args = vec![
        "rollout".to_string(),
        "apply".into(),
        s(&setup.bundle),
        "--profile".into(),
        s(profile),
        "--state-dir".into(),
        s(&setup.state),
    ];
    if !extra.contains(&"--health-interval") {
        args.extend(["--health-interval".to_string(), "500ms".into()]);
    }
    if !extra.contains(&"--health-timeout") {
        args.extend(["--health-timeout".to_string(), "60s".into()]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    certs(&args)
}

fn new_serials(setup: &Setup) -> Vec<String> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(setup.bundle.join("bundle.json")).unwrap()).unwrap();
    (1..=3)
        .map(|n| {
            manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["bundle_path"] == format!("member-etcd{n}.pem"))
                .unwrap()["new_serial"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Every member's files are either all-old or all-new, and each certificate pairs with its key.
fn consistent(setup: &Setup) {
    for n in 1..=3 {
        let cert = setup.pki.join(format!("member-etcd{n}.pem"));
        let key = setup.pki.join(format!("member-etcd{n}-key.pem"));
        let from_cert = openssl(["x509", "-noout", "-pubkey", "-in", cert.to_str().unwrap()]);
        let from_key = openssl(["pkey", "-pubout", "-in", key.to_str().unwrap()]);
        assert_eq!(
            from_cert, from_key,
            "member {n}: certificate and key do not pair"
        );
        assert!(
            !setup
                .pki
                .join(format!(".member-etcd{n}.pem.certs-tmp"))
                .exists(),
            "temp file left behind"
        );
    }
}

#[test]
fn rolls_three_members_one_at_a_time_without_a_failed_request() {
    let setup = setup(&[]);
    let profile = profile(&setup, &|n| setup.cluster.restart_cmd(n));
    // The plan and a dry run first: nothing changes.
    let before = tree_digest(&setup.pki);
    let plan = certs([
        "rollout",
        "plan",
        &s(&setup.bundle),
        "--profile",
        &s(&profile),
        "-o",
        "json",
    ])
    .json();
    let order: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["component"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["etcd-1", "etcd-2", "etcd-3"]);
    let dry = apply(&setup, &profile, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(
        before,
        tree_digest(&setup.pki),
        "--dry-run changed the tree"
    );
    assert!(!setup.state.exists());

    let load = setup.cluster.spawn_client();
    let run = apply(&setup, &profile, &[]);
    let report = load.stop();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        report.failed, 0,
        "client saw failures: {:?}",
        report.failures
    );
    assert!(report.ok > 20, "too few client requests ({})", report.ok);
    let serials = new_serials(&setup);
    for n in 1..=3 {
        assert_eq!(
            setup.cluster.served_serial(n),
            serials[n - 1],
            "member {n} does not serve the new certificate"
        );
        assert_eq!(
            file_serial(&setup.pki.join(format!("member-etcd{n}.pem"))),
            serials[n - 1]
        );
    }
    let health = setup.cluster.etcdctl(&["endpoint", "health"]);
    assert!(
        health.status.success(),
        "{}",
        String::from_utf8_lossy(&health.stderr)
    );
    consistent(&setup);
    // Progress lines name every step; the journal says done; the backup is kept.
    assert!(run.stdout.contains("etcd-2 health ok"), "{}", run.stdout);
    let status = certs([
        "rollout",
        "status",
        "--state-dir",
        &s(&setup.state),
        "-o",
        "json",
    ])
    .json();
    assert_eq!(status["outcome"], "done");
    assert!(Path::new(status["backup"].as_str().unwrap())
        .join("manifest.json")
        .exists());
}

#[test]
fn a_member_left_down_is_rolled_back_and_the_rollout_stops() {
    let setup = setup(&[]);
    let flag = setup.bundle.parent().unwrap().join("stopped-once");
    // Member 2's first restart leaves it down; the rollback's restart brings it back.
    let profile = profile(&setup, &|n| {
        if n == 2 {
            format!(
                "if [ -e {f} ]; then {r}; else touch {f}; sh '{stop}'; fi",
                f = flag.display(),
                r = setup.cluster.restart_cmd(2),
                stop = setup.cluster.script("stop", 2).display()
            )
        } else {
            setup.cluster.restart_cmd(n)
        }
    });
    let old2 = file_serial(&setup.pki.join("member-etcd2.pem"));
    let run = apply(&setup, &profile, &["--health-timeout", "15s"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let serials = new_serials(&setup);
    assert_eq!(
        setup.cluster.served_serial(1),
        serials[0],
        "member 1 stays on its new certificate"
    );
    assert_eq!(
        setup.cluster.served_serial(2),
        old2,
        "member 2 is back on its old certificate"
    );
    assert_ne!(
        setup.cluster.served_serial(3),
        serials[2],
        "member 3 was never touched"
    );
    assert!(setup
        .cluster
        .etcdctl(&["endpoint", "health"])
        .status
        .success());
    consistent(&setup);
    let status = certs([
        "rollout",
        "status",
        "--state-dir",
        &s(&setup.state),
        "-o",
        "json",
    ])
    .json();
    assert_eq!(status["outcome"], "rolled-back");
    assert!(
        Path::new(status["backup"].as_str().unwrap()).exists(),
        "backups kept"
    );
}

#[test]
fn a_certificate_the_gate_could_never_see_is_refused_before_anything_changes() {
    // Member 2's new certificate lacks its own address: its gate could never verify it. Before
    // the rollout read the node, this was found after the swap and restart; now the plan is
    // refused (exit 2) with the certificate's SANs, and nothing is touched.
    let setup = setup(&[]);
    let bad = setup.bundle.parent().unwrap().join("bad");
    let run = certs([
        "reissue",
        &s(&setup.pki.join("member-etcd2.pem")),
        "--drop-san",
        "127.0.0.12",
        "--out",
        &s(&bad),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Swap the bad member-2 certificate into the bundle, keeping the manifest honest.
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(setup.bundle.join("bundle.json")).unwrap()).unwrap();
    let bad_manifest: Value =
        serde_json::from_slice(&std::fs::read(bad.join("bundle.json")).unwrap()).unwrap();
    std::fs::copy(
        bad.join("member-etcd2.pem"),
        setup.bundle.join("member-etcd2.pem"),
    )
    .unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["bundle_path"] == "member-etcd2.pem" {
            *f = bad_manifest["files"][0].clone();
        }
    }
    std::fs::write(
        setup.bundle.join("bundle.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    let marker = setup.bundle.parent().unwrap().join("restarted");
    let profile = profile(&setup, &|_| format!("touch {}", s(&marker)));
    let before = tree_digest(&setup.pki);
    let old2 = setup.cluster.served_serial(2);
    for extra in [&["--dry-run"][..], &[]] {
        let run = apply(&setup, &profile, extra);
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        let problems: Vec<&str> = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("certs: error:"))
            .collect();
        assert_eq!(problems.len(), 1, "{}", run.stderr);
        assert!(
            problems[0].contains("etcd-2: gate https://127.0.0.12:2379")
                && problems[0].contains("does not cover 127.0.0.12")
                && problems[0].contains("IP:127.0.0.13"),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    }
    let plan = certs([
        "rollout",
        "plan",
        &s(&setup.bundle),
        "--profile",
        &s(&profile),
    ]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert_eq!(before, tree_digest(&setup.pki), "the node changed");
    assert!(!marker.exists(), "a restart command ran");
    assert!(!setup.state.exists(), "the state dir was created");
    assert_eq!(setup.cluster.served_serial(2), old2);
}

#[test]
fn a_killed_rollout_is_resumed_or_rolled_back() {
    for (crash_at, finish) in [(1, "resume"), (3, "rollback")] {
        let setup = setup(&[]);
        let flag = setup.bundle.parent().unwrap().join("killed-once");
        // The restart of member `crash_at` kills `certs rollout apply` (SIGKILL) the first time.
        let profile = profile(&setup, &|n| {
            if n == crash_at {
                format!(
                    "if [ -e {f} ]; then {r}; else touch {f}; kill -9 $PPID; fi",
                    f = flag.display(),
                    r = setup.cluster.restart_cmd(n)
                )
            } else {
                setup.cluster.restart_cmd(n)
            }
        });
        let before = tree_digest(&setup.pki);
        let run = apply(&setup, &profile, &[]);
        assert_ne!(run.code, 0, "the rollout should have been killed");
        let status = certs(["rollout", "status", "--state-dir", &s(&setup.state)]);
        assert!(status.stdout.contains("interrupted"), "{}", status.stdout);
        assert!(
            status
                .stdout
                .contains(&format!("etcd-{crash_at}: Restarting")),
            "{}",
            status.stdout
        );
        // A second apply refuses while the interrupted one is recorded.
        let again = apply(&setup, &profile, &[]);
        assert_eq!(again.code, 2, "{}", again.stderr);
        let run = certs([
            "rollout",
            finish,
            "--state-dir",
            &s(&setup.state),
            "--health-timeout",
            "60s",
            "--health-interval",
            "500ms",
        ]);
        assert_eq!(run.code, 0, "{finish}: {}{}", run.stdout, run.stderr);
        consistent(&setup);
        let serials = new_serials(&setup);
        for n in 1..=3 {
            let on_disk = file_serial(&setup.pki.join(format!("member-etcd{n}.pem")));
            if finish == "resume" {
                assert_eq!(on_disk, serials[n - 1], "member {n} after resume");
                assert_eq!(setup.cluster.served_serial(n), serials[n - 1]);
            } else {
                assert_ne!(on_disk, serials[n - 1], "member {n} after rollback");
            }
        }
        if finish == "rollback" {
            assert_eq!(
                before,
                tree_digest(&setup.pki),
                "rollback restores every byte"
            );
        }
        assert!(setup
            .cluster
            .etcdctl(&["endpoint", "health"])
            .status
            .success());
    }
}

/// A measurement for BENCHMARKS.md, not a timed test: run it with `bench/rollout.sh`.
/// The floor is each member's bare restart-to-healthy time through the same gate the rollout
/// uses; the rollout adds backups, swaps, journal writes and its one-at-a-time order.
#[test]
#[ignore]
fn rollout_measurement() {
    use certs::rollout::exec::Prober;
    use std::time::{Duration, Instant};
    let setup = setup(&[]);
    let profile = profile(&setup, &|n| setup.cluster.restart_cmd(n));
    let prober = certs::rollout::probe::TlsProber {
        timeout: Duration::from_secs(2),
    };
    let gate = |n: usize| certs::rollout::plan::Gate {
        url: format!("https://127.0.0.1{n}:2379"),
        path: Some("/health".into()),
        expect: Some("\"health\":\"true\"".into()),
        trust: certs::rollout::plan::Trust::Ca(setup.pki.join("ca.pem")),
        client: Some(certs::rollout::plan::Identity {
            cert: setup.pki.join("admin-etcd1.pem"),
            key: setup.pki.join("admin-etcd1-key.pem"),
        }),
        serves: None,
        origin: "floor measurement".into(),
    };
    let interval = Duration::from_millis(100);
    let mut floor = Vec::new();
    for n in 1..=3 {
        let t = Instant::now();
        let ok = std::process::Command::new("sh")
            .arg("-c")
            .arg(setup.cluster.restart_cmd(n))
            .status()
            .unwrap();
        assert!(ok.success());
        while prober.check(&gate(n), None).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "member {n} did not come back"
            );
            std::thread::sleep(interval);
        }
        floor.push(t.elapsed());
    }
    let load = setup.cluster.spawn_client();
    let t = Instant::now();
    let run = apply(&setup, &profile, &["--health-interval", "100ms"]);
    let total = t.elapsed();
    let report = load.stop();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let sum: Duration = floor.iter().sum();
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    println!("| measure | value |\n| --- | --- |");
    for (n, f) in floor.iter().enumerate() {
        println!(
            "| bare restart-to-healthy, member {} | {:.0} ms |",
            n + 1,
            ms(f)
        );
    }
    println!("| floor (sum of the three) | {:.0} ms |", ms(&sum));
    println!(
        "| certs rollout apply, three members | {:.0} ms |",
        ms(&total)
    );
    println!(
        "| overhead over the floor | {:.0} ms ({:.0}%) |",
        ms(&total) - ms(&sum),
        (ms(&total) / ms(&sum) - 1.0) * 100.0
    );
    println!(
        "| client requests during the rollout | {} ok, {} failed |",
        report.ok, report.failed
    );
}

/// Bad input to `rollout`: one line on stderr, exit 2, and the node's files untouched.
#[test]
fn bad_bundles_and_state_dirs_change_nothing() {
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
    let plan = certs(["rollout", "plan", &s(&bundle), "--root", &s(root)]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("kube-apiserver") && plan.stdout.contains("static pod"),
        "{}",
        plan.stdout
    );

    let apply = |extra: &[&str]| {
        let mut args = vec![
            "rollout".to_string(),
            "apply".into(),
            s(&bundle),
            "--root".into(),
            s(root),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        certs(&args)
    };
    let state = root.join("state");
    let node = root.join("etc");
    let before = tree_digest(&node);
    let check = |run: crate::util::Run, words: &str| {
        assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(words),
            "expected `{words}` in: {}",
            run.stderr
        );
        assert_eq!(before, tree_digest(&node), "the node's files changed");
    };

    // A bundle file that is not the one bundle.json describes.
    let good = std::fs::read(bundle.join("apiserver.crt")).unwrap();
    std::fs::write(bundle.join("apiserver.crt"), b"tampered").unwrap();
    check(apply(&["--state-dir", &s(&state)]), "SHA-256");
    std::fs::write(bundle.join("apiserver.crt"), &good).unwrap();

    // A target edited since the bundle was made.
    let original = std::fs::read(pki.join("apiserver.crt")).unwrap();
    std::fs::copy(
        pki.join("front-proxy-client.crt"),
        pki.join("apiserver.crt"),
    )
    .unwrap();
    let edited = tree_digest(&node);
    let run = apply(&["--state-dir", &s(&state)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("changed since"), "{}", run.stderr);
    assert_eq!(edited, tree_digest(&node));
    std::fs::write(pki.join("apiserver.crt"), &original).unwrap();

    // An unusable state directory, an unknown profile, a missing manifest.
    check(
        apply(&["--state-dir", &s(&pki.join("ca.crt").join("state"))]),
        "cannot write",
    );
    check(
        apply(&["--state-dir", &s(&state), "--profile", "nope"]),
        "expected a profile",
    );
    std::fs::rename(bundle.join("bundle.json"), root.join("moved.json")).unwrap();
    check(apply(&["--state-dir", &s(&state)]), "bundle.json");

    // Nothing was recorded by the refused runs.
    let status = certs(["rollout", "status", "--state-dir", &s(&state)]);
    assert_eq!(status.code, 0);
    assert!(
        status.stdout.contains("no rollout recorded"),
        "{}",
        status.stdout
    );
}
