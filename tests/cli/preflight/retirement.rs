//! Moving a VIP and retiring masters: kubeadm and binary clusters, retirement by etcd member
//! name, and drained upstream lines.

use super::*;

#[test]
fn kubeadm_vip_fails_before_and_passes_after_the_reissue() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let state = root.join("state");
    let args = |vip: &str| -> Vec<String> {
        vec![
            "--root".into(),
            s(root),
            "--vip".into(),
            vip.into(),
            "--offline".into(),
            "--now".into(),
            NOW.into(),
            "--state-dir".into(),
            s(&state),
        ]
    };
    let (code, before) = preflight(&args("10.21.22.101"));
    assert_eq!(code, 1);
    let (failed, warned) = ids(&before);
    assert_eq!(failed, set(&["vip-san"]), "{before}");
    // The fixture's leaves live almost as long as its CAs; kubeconfigs still name the master.
    assert_eq!(warned, set(&["ca-lifetime", "kubeconfig-vip"]), "{before}");
    let fix = messages(&before, "vip-san");
    assert!(
        fix.contains("certs reissue") && fix.contains("--add-san 10.21.22.101"),
        "{fix}"
    );
    assert!(fix.contains("not 10.21.22.101"), "{fix}");

    // Reissue with the VIP and install the new certificate; now it passes.
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
    std::fs::copy(bundle.join("apiserver.crt"), pki.join("apiserver.crt")).unwrap();
    std::fs::remove_dir_all(&bundle).unwrap();
    let (code, after) = preflight(&args("10.21.22.101"));
    assert_eq!(code, 0, "{after}");
    let (failed, _) = ids(&after);
    assert!(failed.is_empty(), "{after}");

    // A world-readable private key fails, with the chmod that fixes it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        pki.join("apiserver.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, report) = preflight(&args("10.21.22.101"));
    assert_eq!(code, 1);
    assert_eq!(ids(&report).0, set(&["key-permissions"]), "{report}");
    assert!(
        messages(&report, "key-permissions").contains("chmod 600"),
        "{report}"
    );
}

#[test]
fn binary_cluster_retiring_two_masters() {
    let dir = fixture("binary");
    let root = dir.path();
    let mut args: Vec<String> = vec![
        "--root".into(),
        s(root),
        "--state-dir".into(),
        s(&root.join("state")),
    ];
    for r in ["172.72.0.96", "172.72.0.97"] {
        args.extend(["--retire".into(), r.into()]);
    }
    args.extend(["--keep".into(), "172.72.0.95".into()]);
    let (code, report) = preflight(&args);
    assert_eq!(code, 1);
    let (failed, warned) = ids(&report);
    assert_eq!(
        failed,
        set(&["etcd-servers-flag", "proxy-upstream"]),
        "{report}"
    );
    // etcd.service's --initial-cluster still lists etcd2 and etcd3: a warning (read only when a
    // member's data directory is created), with the value that keeps etcd1 alone.
    assert_eq!(
        warned,
        set(&["ca-lifetime", "etcd-initial-cluster", "retire-stale-san"]),
        "{report}"
    );
    let initial = messages(&report, "etcd-initial-cluster");
    assert!(
        initial.contains("etcd.service:24")
            && initial.contains("set --initial-cluster=etcd1=https://172.72.0.95:2380 in "),
        "{initial}"
    );
    let stale = messages(&report, "retire-stale-san");
    assert!(
        stale.contains("kubernetes.pem") && stale.contains("etcd.pem"),
        "{stale}"
    );
    assert!(
        stale.contains("--drop-san 172.72.0.96 --drop-san 172.72.0.97"),
        "{stale}"
    );
    let proxy = messages(&report, "proxy-upstream");
    assert!(
        proxy.contains("kube-lb.conf:13") && proxy.contains("kube-lb.conf:14"),
        "{proxy}"
    );
    // Every retired member leaves --etcd-servers, not only the first (the fix used to keep
    // https://172.72.0.97:2379).
    let flag = fixes(&report, "etcd-servers-flag");
    assert_eq!(flag.len(), 1, "{report}");
    assert!(
        flag[0].starts_with("set --etcd-servers=https://172.72.0.95:2379 in ")
            && flag[0].contains("kube-apiserver.service"),
        "{flag:?}"
    );
    assert!(!flag[0].contains("172.72.0.96") && !flag[0].contains("172.72.0.97"));
    let proxy_fix = fixes(&report, "proxy-upstream");
    assert!(
        proxy_fix[0].starts_with("sed -i -e '13d' -e '14d' ")
            && proxy_fix[0].contains("left: 172.72.0.95:6443"),
        "{proxy_fix:?}"
    );
    // Retiring every master fails outright (without --keep 172.72.0.95: a node both kept and
    // retired is a usage error).
    let mut all = args[..4].to_vec();
    for r in ["172.72.0.95", "172.72.0.96", "172.72.0.97"] {
        all.extend(["--retire".into(), r.into()]);
    }
    let (_, report) = preflight(&all);
    assert!(
        ids(&report).0.contains("retire-last-control-plane"),
        "{report}"
    );
    // kube-proxy's kubeconfig pointing at a retired master fails.
    let (_, report) = preflight(
        &[
            vec![
                "--retire".to_string(),
                "172.72.0.95".into(),
                "--keep".into(),
                "172.72.0.96".into(),
            ],
            args[..4].to_vec(),
        ]
        .concat(),
    );
    assert!(
        messages(&report, "kubeconfig-retired").contains("kube-proxy.kubeconfig"),
        "{report}"
    );
    // The fix points it at the kept master (no VIP given), on the port it used.
    assert!(
        fixes(&report, "kubeconfig-retired")[0].ends_with("--server=https://172.72.0.96:6443"),
        "{report}"
    );
}

/// `--retire etcd2 --retire etcd3 --keep etcd1`: the names etcd.service's --initial-cluster
/// ties to 172.72.0.96, .97 and .95 find the same lines, certificates and fixes as the
/// addresses do.
#[test]
fn binary_retirement_by_etcd_member_name() {
    let dir = fixture("binary");
    let root = dir.path();
    let by = |retire: [&str; 2], keep: &str| {
        let mut args: Vec<String> = vec![
            "--root".into(),
            s(root),
            "--state-dir".into(),
            s(&root.join("state")),
            "--keep".into(),
            keep.into(),
        ];
        for r in retire {
            args.extend(["--retire".into(), r.into()]);
        }
        preflight(&args)
    };
    let (code, named) = by(["etcd2", "etcd3"], "etcd1");
    let (_, addressed) = by(["172.72.0.96", "172.72.0.97"], "172.72.0.95");
    assert_eq!(code, 1);
    assert_eq!(ids(&named), ids(&addressed), "{named}");
    for id in [
        "etcd-servers-flag",
        "proxy-upstream",
        "retire-stale-san",
        "etcd-initial-cluster",
    ] {
        assert_eq!(fixes(&named, id), fixes(&addressed, id), "{id}: {named}");
    }
    let resolved = messages(&named, "member-names");
    assert!(
        resolved.contains("--retire etcd2 is 172.72.0.96: etcd2=172.72.0.96 (")
            && resolved.contains("etcd.service ExecStart --initial-cluster)")
            && resolved.contains("--keep etcd1 is 172.72.0.95"),
        "{resolved}"
    );
    assert_eq!(
        statuses(&named, "retire-keep-san"),
        ["pass", "pass"],
        "{named}"
    );
    // A name nothing ties to an address is a warning; one node both kept and retired is a
    // usage error.
    let (_, ghost) = by(["etcd2", "etcd9"], "etcd1");
    assert!(
        messages(&ghost, "member-names").contains("--retire etcd9: no file on this node ties"),
        "{ghost}"
    );
    let run = certs([
        "preflight",
        "--root",
        &s(root),
        "--retire",
        "etcd2",
        "--keep",
        "172.72.0.96",
    ]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("172.72.0.96") && run.stderr.lines().count() == 1,
        "{}",
        run.stderr
    );
}

/// Upstream lines already marked `down` receive no traffic: reported as drained (pass), and
/// only the live line of a retired master fails.
#[test]
fn drained_upstream_lines_do_not_fail() {
    let dir = fixture("binary");
    let root = dir.path();
    let conf = root.join("etc/kube-lb/conf/kube-lb.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let drained = text.replace("server 172.72.0.96:6443;", "server 172.72.0.96:6443 down;");
    assert_ne!(drained, text);
    std::fs::write(&conf, &drained).unwrap();
    let args: Vec<String> = [
        "--root",
        &s(root),
        "--state-dir",
        &s(&root.join("state")),
        "--retire",
        "172.72.0.96",
        "--retire",
        "172.72.0.97",
    ]
    .map(String::from)
    .to_vec();
    let (_, report) = preflight(&args);
    let mut st = statuses(&report, "proxy-upstream");
    st.sort();
    assert_eq!(st, ["fail", "pass"], "{report}");
    let all = messages(&report, "proxy-upstream");
    assert!(
        all.contains("kube-lb.conf:13 already drained: retired 172.72.0.96:6443 is marked down"),
        "{all}"
    );
    let failing: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "proxy-upstream" && c["status"] == "fail")
        .collect();
    let msg = failing[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("kube-lb.conf:14") && !msg.contains("kube-lb.conf:13"),
        "{msg}"
    );
    // Both drained: the proxy fails nothing any more.
    std::fs::write(
        &conf,
        drained.replace("server 172.72.0.97:6443;", "server 172.72.0.97:6443 down;"),
    )
    .unwrap();
    let (_, report) = preflight(&args);
    assert_eq!(
        statuses(&report, "proxy-upstream"),
        ["pass", "pass"],
        "{report}"
    );
    assert_eq!(ids(&report).0, set(&["etcd-servers-flag"]), "{report}");
}
