//! The playbook retiring a member across three hosts of a real etcd cluster.

use super::*;

/// What each run's hosts must look like after the retirement of etcd3 (node3).
fn assert_retired(
    cluster: &EtcdCluster,
    hosts: &Hosts,
    originals: &[Vec<(String, String, String)>],
) {
    for n in 1..=2 {
        let root = hosts.root(n);
        for (i, (file, subject, pubkey)) in originals[n - 1].iter().enumerate() {
            let cert = root.join(file);
            let got = sans(&cert);
            assert!(
                !got.iter().any(|x| x == "IP:127.0.0.13" || x == "DNS:etcd3"),
                "node{n} {file}: {got:?}"
            );
            assert_eq!(&x509(&cert, "-subject"), subject, "node{n} {file}");
            assert_eq!(&x509(&cert, "-pubkey"), pubkey, "node{n} {file} #{i}");
        }
        let own = sans(&root.join("etc/kubernetes/ssl/apiserver.crt"));
        assert!(
            own.contains(&format!("DNS:node{n}")) && own.contains(&format!("IP:127.0.0.1{n}")),
            "{own:?}"
        );
        let member = sans(&root.join(NODE_PKI).join(format!("member-etcd{n}.pem")));
        assert!(member.contains(&format!("DNS:etcd{n}")), "{member:?}");
        let env = std::fs::read_to_string(root.join("etc/etcd.env")).unwrap();
        assert!(
            env.contains("ETCD_INITIAL_CLUSTER=etcd1=https://127.0.0.11:2380,etcd2=https://127.0.0.12:2380\n"),
            "{env}"
        );
        let unit = std::fs::read_to_string(root.join("etc/systemd/system/kube-apiserver.service"))
            .unwrap();
        assert!(
            unit.contains("--etcd-servers=https://127.0.0.11:2379,https://127.0.0.12:2379\n"),
            "{unit}"
        );
        // The members serve their new certificates.
        let file_serial = x509(
            &root.join(NODE_PKI).join(format!("member-etcd{n}.pem")),
            "-serial",
        );
        assert_eq!(
            cluster.served_serial(n),
            file_serial.trim().trim_start_matches("serial=")
        );
    }
    let list = cluster.etcdctl(&[
        "--endpoints=https://127.0.0.11:2379,https://127.0.0.12:2379",
        "member",
        "list",
    ]);
    assert!(list.status.success(), "{list:?}");
    let list = String::from_utf8_lossy(&list.stdout);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(!list.contains("etcd3"), "{list}");
}

/// The files whose names and keys are checked: each host's certificates.
fn identities(hosts: &Hosts) -> Vec<Vec<(String, String, String)>> {
    (1..=2)
        .map(|n| {
            let root = hosts.root(n);
            [
                format!("{NODE_PKI}/member-etcd{n}.pem"),
                format!("{NODE_PKI}/admin-etcd1.pem"),
                "etc/kubernetes/ssl/apiserver.crt".to_string(),
            ]
            .into_iter()
            .map(|f| {
                let c = root.join(&f);
                (f, x509(&c, "-subject"), x509(&c, "-pubkey"))
            })
            .collect()
        })
        .collect()
}

#[test]
fn playbook_retires_a_member_across_three_hosts_of_a_real_etcd_cluster() {
    let src = fixture("etcd-loopback");
    let cluster = EtcdCluster::start_nodes(&src.path().join(NODE_PKI), Form::Env);
    let work = tempfile::tempdir().unwrap();
    let hosts = Hosts::new(&cluster, work.path());
    let inventory = hosts.inventory(&cluster);
    let originals = identities(&hosts);
    let pb = render(&hosts, &inventory, "retire", &["--retire", "node3"]);
    let load = cluster.spawn_client();
    std::thread::sleep(Duration::from_secs(1));

    // A failure injected on the second host stops the run: node1 done (its files new), node2
    // rolled back to exactly what it had, nothing after it; etcd3 is removed by the last etcd
    // host (node2) once every member has restarted, so it is still a member here.
    let node2_before = tree_digest(&hosts.root(2).join("etc"));
    std::fs::write(work.path().join("fail-etcd-2"), "").unwrap();
    let (ok, log) = ansible_playbook(&pb, &inventory, &[]);
    assert!(!ok, "{log}");
    assert!(log.contains("injected failure"), "{log}");
    assert_eq!(
        tree_digest(&hosts.root(2).join("etc")),
        node2_before,
        "{log}"
    );
    let first = sans(&hosts.root(1).join(NODE_PKI).join("member-etcd1.pem"));
    assert!(
        !first.contains(&"IP:127.0.0.13".to_string()),
        "{first:?}\n{log}"
    );
    assert!(cluster.member_health(1) && cluster.member_health(2));
    let calls2 = std::fs::read_to_string(work.path().join("systemctl-2.calls")).unwrap_or_default();
    assert!(
        !calls2.contains("restart kube-apiserver"),
        "node2 went past etcd: {calls2}"
    );

    // The run again, without the failure: node1 has nothing left to do, node2 completes.
    let trace = work.path().join("trace");
    let (ok, log2) = traced_playbook(&pb, &inventory, &trace);
    assert!(ok, "{log2}");
    let r = recap(&log2);
    assert!(
        r.iter().any(|(h, c, f)| h == "node2" && *c > 0 && *f == 0),
        "{r:?}\n{log2}"
    );
    assert!(r.iter().all(|(_, _, f)| *f == 0), "{r:?}");

    let report = load.stop();
    assert_eq!(
        report.failed,
        0,
        "failed requests: {:#?}\n{}",
        report.failures,
        cluster.logs()
    );
    assert!(report.ok > 20, "{report:?}");
    assert_retired(&cluster, &hosts, &originals);

    // The CA keys were opened on the CA host only: every open of a CA key is node1's file, and
    // no copy of any private key exists outside its own host's files.
    let opens = std::fs::read_to_string(&trace).unwrap();
    let ca_opens: Vec<&str> = opens
        .lines()
        .filter(|l| (l.contains("ca-key.pem") || l.contains("ca.key")) && !l.contains("ENOENT"))
        .collect();
    assert!(
        !ca_opens.is_empty(),
        "the CA host's reissue read no CA key?"
    );
    for l in &ca_opens {
        assert!(
            l.contains(&s(hosts.root(1))),
            "a CA key opened off the CA host: {l}"
        );
    }
    let places: Vec<&Path> = vec![work.path(), hosts.root(2), hosts.root(3)];
    for (n, key) in [
        (1, format!("{NODE_PKI}/ca-key.pem")),
        (1, "etc/kubernetes/ssl/ca.key".to_string()),
        (1, format!("{NODE_PKI}/member-etcd1-key.pem")),
        (2, format!("{NODE_PKI}/member-etcd2-key.pem")),
        (2, "etc/kubernetes/ssl/apiserver.key".to_string()),
    ] {
        let bytes = std::fs::read(hosts.root(n).join(&key)).unwrap();
        let copies: Vec<PathBuf> = key_copies(&places, &bytes)
            .into_iter()
            .filter(|p| !p.starts_with(hosts.root(n)))
            .collect();
        assert!(copies.is_empty(), "node{n}'s {key} copied to {copies:?}");
    }

    // Once more: nothing changes, and the recap says so.
    let (ok, log3) = ansible_playbook(&pb, &inventory, &[]);
    assert!(ok, "{log3}");
    let r = recap(&log3);
    assert!(!r.is_empty(), "{log3}");
    assert!(
        r.iter().all(|(_, c, f)| *c == 0 && *f == 0),
        "{r:?}\n{log3}"
    );
    assert_retired(&cluster, &hosts, &originals);
}
