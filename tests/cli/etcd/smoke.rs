//! Smoke tests of the harness: rolling restarts, lost quorum, and node roots of every form
//! running what their units say.

use super::*;

// ---------------------------------------------------------------------------------------------
// Smoke tests of the harness
// ---------------------------------------------------------------------------------------------

const PKI: &str = "etc/ssl/etcd/ssl";

#[test]
fn three_member_cluster_survives_rolling_restarts() {
    let tree = fixture("etcd-loopback");
    let pki = tree.path().join(PKI);
    let cluster = EtcdCluster::start(&pki);
    assert_eq!(
        cluster.endpoints(),
        [
            "https://127.0.0.11:2379",
            "https://127.0.0.12:2379",
            "https://127.0.0.13:2379"
        ]
    );
    let list = cluster.etcdctl(&["member", "list"]);
    assert!(list.status.success(), "{list:?}");
    let list = String::from_utf8_lossy(&list.stdout);
    for n in 1..=MEMBERS {
        assert!(
            list.contains(&format!("etcd{n}, https://127.0.0.1{n}:2380")),
            "{list}"
        );
    }

    for action in ["start", "stop", "restart"] {
        let script = cluster.work_dir().join(format!("{action}-1.sh"));
        assert_eq!(cluster.script(action, 1), script);
        assert!(script.is_file());
    }

    let load = cluster.spawn_client();
    thread::sleep(Duration::from_secs(1));
    let began = Instant::now();
    for n in 1..=MEMBERS {
        let before = cluster.pid(n).expect("member runs");
        let t = Instant::now();
        let out = Command::new("sh")
            .args(["-c", &cluster.restart_cmd(n)])
            .stdin(Stdio::null())
            .output()
            .expect("sh");
        assert!(out.status.success(), "{}: {out:?}", cluster.restart_cmd(n));
        let restarted = t.elapsed();
        let after = cluster.pid(n).expect("member runs again");
        assert_ne!(before, after, "etcd{n} was not restarted");
        cluster.wait_healthy(n);
        eprintln!(
            "etcd{n}: restart script {restarted:?}, healthy after {:?}",
            t.elapsed()
        );
        // Let the load run against the whole cluster before the next member goes down.
        thread::sleep(Duration::from_millis(500));
    }
    let report = load.stop();
    eprintln!(
        "rolling restart of {MEMBERS} members in {:?}: {} ok, {} failed, slowest request {:?}",
        began.elapsed(),
        report.ok,
        report.failed,
        report.slowest
    );
    assert_eq!(
        report.failed,
        0,
        "failed requests: {:#?}\n{}",
        report.failures,
        cluster.logs()
    );
    assert!(report.ok > 20, "too few requests: {report:?}");

    for n in 1..=MEMBERS {
        let file = cluster.pki_dir().join(format!("member-etcd{n}.pem"));
        assert_eq!(cluster.served_serial(n), file_serial(&file), "etcd{n}");
        assert!(cluster.is_running(n));
    }
}

#[test]
fn losing_quorum_fails_client_requests() {
    let tree = fixture("etcd-loopback");
    let cluster = EtcdCluster::start(&tree.path().join(PKI));
    cluster
        .put("quorum", "before")
        .expect("put on a healthy cluster");

    cluster.stop_member(1);
    cluster.stop_member(2);
    assert!(!cluster.is_running(1) && !cluster.is_running(2));
    assert!(cluster.pid(1).is_none(), "stop removes the pid file");
    assert!(
        !cluster.member_health(3),
        "one member of three has no quorum"
    );
    let err = cluster
        .put("quorum", "during")
        .expect_err("a put without quorum must fail");
    assert!(err.contains("no member served it"), "{err}");

    let load = cluster.spawn_client();
    thread::sleep(Duration::from_secs(3));
    let report = load.stop();
    eprintln!("without quorum: {report:?}");
    assert!(report.failed > 0, "{report:?}");
    assert_eq!(report.ok, 0, "{report:?}");

    cluster.start_member(1);
    cluster.start_member(2);
    cluster.wait_all_healthy();
    // (Not "before": a leader that has not yet noticed the lost quorum may have appended a
    // failed put to its log, which commits once the quorum is back.)
    cluster.put("quorum", "after").expect("put after recovery");
    assert_eq!(cluster.get("quorum").unwrap().as_deref(), Some("after"));
    let got = cluster.etcdctl(&["get", "quorum", "--print-value-only"]);
    assert!(got.status.success(), "{got:?}");
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "after");
}

/// The fake `systemctl` of node `n`.
fn systemctl(cluster: &EtcdCluster, n: usize, args: &[&str]) -> Output {
    Command::new(cluster.fake_bin(n).join("systemctl"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the fake systemctl")
}

/// What every node root holds, whatever its form.
fn check_node_root(cluster: &EtcdCluster, n: usize) {
    let ssl = cluster.node_pki(n);
    assert_eq!(ssl, cluster.node_root(n).join(PKI));
    for stem in ["ca", "admin-etcd1", &format!("member-etcd{n}")] {
        let key = ssl.join(format!("{stem}-key.pem"));
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
        assert!(ssl.join(format!("{stem}.pem")).is_file());
    }
    let others: Vec<PathBuf> = (1..=MEMBERS)
        .filter(|&m| m != n)
        .map(|m| ssl.join(format!("member-etcd{m}.pem")))
        .collect();
    assert!(others.iter().all(|p| !p.exists()), "{others:?}");
    assert_eq!(
        cluster.served_serial(n),
        file_serial(&ssl.join(format!("member-etcd{n}.pem"))),
        "etcd{n}"
    );
    assert!(cluster.is_running(n));
}

#[test]
fn flag_node_roots_run_what_their_units_say() {
    let tree = fixture("etcd-loopback");
    let cluster = EtcdCluster::start_nodes(&tree.path().join(PKI), Form::Flags);
    assert_eq!(cluster.form(), Some(Form::Flags));
    let etcd = etcd_binary();
    for n in 1..=MEMBERS {
        let root = cluster.node_root(n);
        assert_eq!(root, cluster.work_dir().join(format!("node{n}")));
        check_node_root(&cluster, n);
        let unit = fs::read_to_string(root.join(UNIT)).unwrap();
        assert!(
            unit.contains(&format!("ExecStart={} \\\n", s_ref(&etcd)))
                && unit.contains(&format!(
                    "  --cert-file=/etc/ssl/etcd/ssl/member-etcd{n}.pem \\\n"
                ))
                && unit.contains("  --data-dir=/var/lib/etcd \\\n"),
            "{unit}"
        );
        assert!(!root.join(ENV_FILE).exists());
        // The unit's command, word for word, but for the node root in front of /etc and /var.
        let r = s_ref(root);
        let mut expected = vec![s_ref(&etcd).to_string()];
        expected.extend(member_settings(n).into_iter().map(|(flag, value)| {
            if value.starts_with("/etc/") || value.starts_with("/var/") {
                format!("--{flag}={r}{value}")
            } else {
                format!("--{flag}={value}")
            }
        }));
        assert_eq!(cluster.cmdline(n), expected, "etcd{n}");
        assert!(expected.contains(&format!("--data-dir={r}/var/lib/etcd")));
        assert!(expected.contains(&format!(
            "--peer-trusted-ca-file={r}/etc/ssl/etcd/ssl/ca.pem"
        )));
        // A clean environment, as under systemd.
        let environ = cluster.environ(n);
        assert!(
            environ.len() == 1 && environ[0].starts_with("PATH="),
            "{environ:?}"
        );
    }

    // The fake systemctl: node 2's `restart etcd` restarts member 2.
    let before = cluster.pid(2).expect("member 2 runs");
    let out = systemctl(&cluster, 2, &["--quiet", "restart", "etcd"]);
    assert!(out.status.success(), "{out:?}");
    assert_ne!(cluster.pid(2), Some(before), "member 2 was not restarted");
    cluster.wait_healthy(2);
    let out = systemctl(&cluster, 2, &["is-active", "--quiet", "etcd"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    let out = systemctl(&cluster, 2, &["is-active", "etcd.service"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "active\n");
    assert!(systemctl(&cluster, 2, &["daemon-reload"]).status.success());
    for args in [
        &["restart", "kubelet"][..],
        &["is-active", "etcd", "kube-apiserver.service"],
        &["stop", "etcd"],
    ] {
        let out = systemctl(&cluster, 2, args);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {out:?}");
        let unit = args[1..]
            .iter()
            .find(|u| !u.starts_with("etcd"))
            .unwrap_or(&"etcd")
            .trim_end_matches(".service");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("Unit {unit}.service not found.\n"),
            "{args:?}"
        );
    }
    assert_eq!(
        cluster.systemctl_calls(2),
        [
            "--quiet restart etcd",
            "is-active --quiet etcd",
            "is-active etcd.service",
            "daemon-reload",
            "restart kubelet",
            "is-active etcd kube-apiserver.service",
            "stop etcd",
        ]
    );
    assert!(cluster.systemctl_calls(1).is_empty());
    // Node 3's is-active follows member 3.
    cluster.stop_member(3);
    let out = systemctl(&cluster, 3, &["is-active", "etcd"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "inactive\n");
    cluster.start_member(3);
    cluster.wait_all_healthy();
    assert!(cluster.etcdctl(&["endpoint", "health"]).status.success());
}

#[test]
fn env_file_node_roots_run_what_their_units_say() {
    let tree = fixture("etcd-loopback");
    let cluster = EtcdCluster::start_nodes(&tree.path().join(PKI), Form::Env);
    assert_eq!(cluster.form(), Some(Form::Env));
    let etcd = etcd_binary();
    for n in 1..=MEMBERS {
        let root = cluster.node_root(n);
        check_node_root(&cluster, n);
        let unit = fs::read_to_string(root.join(UNIT)).unwrap();
        assert!(
            unit.contains("EnvironmentFile=/etc/etcd.env\n")
                && unit.contains(&format!("ExecStart={}\n", s_ref(&etcd))),
            "{unit}"
        );
        let env = fs::read_to_string(root.join(ENV_FILE)).unwrap();
        assert!(
            env.contains(&format!(
                "\nETCD_CERT_FILE=/etc/ssl/etcd/ssl/member-etcd{n}.pem\n"
            )) && env.contains("\nETCD_CLIENT_CERT_AUTH=true\n"),
            "{env}"
        );
        // A bare command line; the environment file's variables, rerooted, and PATH.
        assert_eq!(cluster.cmdline(n), [s_ref(&etcd)], "etcd{n}");
        let r = s_ref(root);
        let mut environ = cluster.environ(n);
        environ.sort();
        let mut expected: Vec<String> = member_settings(n)
            .into_iter()
            .map(|(flag, value)| {
                let var = format!("ETCD_{}", flag.to_uppercase().replace('-', "_"));
                if value.starts_with("/etc/") || value.starts_with("/var/") {
                    format!("{var}={r}{value}")
                } else {
                    format!("{var}={value}")
                }
            })
            .collect();
        let path = environ
            .iter()
            .find(|e| e.starts_with("PATH="))
            .cloned()
            .expect("PATH");
        expected.push(path);
        expected.sort();
        assert_eq!(environ, expected, "etcd{n}");
        assert!(expected.contains(&format!(
            "ETCD_KEY_FILE={r}/etc/ssl/etcd/ssl/member-etcd{n}-key.pem"
        )));
        assert!(expected.contains(&format!(
            "ETCD_LISTEN_CLIENT_URLS=https://127.0.0.1{n}:2379"
        )));
    }
    // Recognised by its environment alone: stopped and restarted by its scripts.
    let before = cluster.pid(1).expect("member 1 runs");
    let out = Command::new("sh")
        .args(["-c", &cluster.restart_cmd(1)])
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    assert!(out.status.success(), "{out:?}");
    assert_ne!(cluster.pid(1), Some(before));
    assert!(cluster.is_running(1));
    cluster.wait_all_healthy();
    let list = cluster.etcdctl(&["member", "list"]);
    assert!(list.status.success(), "{list:?}");
    assert_eq!(
        String::from_utf8_lossy(&list.stdout).lines().count(),
        MEMBERS
    );
}
