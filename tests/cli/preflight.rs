//! `certs preflight` on the seed scenarios (exact sets of failed and warned checks), against a
//! real etcd cluster, and through a real nginx stream proxy on a loopback "VIP".

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::{certs, fixture, s, tls_server, NOW};

fn preflight(args: &[String]) -> (i32, Value) {
    let mut all = vec!["preflight".to_string(), "-o".into(), "json".into()];
    all.extend(args.iter().cloned());
    let run = certs(&all);
    assert!(
        run.code == 0 || run.code == 1,
        "exit {}: {}",
        run.code,
        run.stderr
    );
    (run.code, run.json())
}

/// (failed ids, warned ids)
fn ids(report: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let pick = |status: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == status)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    (pick("fail"), pick("warn"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn messages(report: &Value, id: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| format!("{} | {}", c["message"], c["fix"]))
        .collect::<Vec<_>>()
        .join("\n")
}

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

/// The fix texts of the checks with `id`.
fn fixes(report: &Value, id: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .filter_map(|c| c["fix"].as_str().map(str::to_string))
        .collect()
}

fn statuses(report: &Value, id: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
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

/// A proxy config or unit that is odd (a Latin-1 byte, UTF-16, tabs, a one-line block, an
/// `include`) is still read, and one that cannot be read fails: never a silent pass.
#[test]
fn odd_or_unreadable_config_files_fail_the_retirement_never_pass() {
    let utf16 = |t: &str| -> Vec<u8> {
        [0xFF, 0xFE]
            .into_iter()
            .chain(t.encode_utf16().flat_map(u16::to_le_bytes))
            .collect()
    };
    type Variant = (&'static str, &'static str, Box<dyn Fn(&Path)>);
    let lb = "etc/kube-lb/conf/kube-lb.conf";
    let api = "etc/systemd/system/kube-apiserver.service";
    let rewrite =
        move |rel: &'static str, f: Box<dyn Fn(String) -> Vec<u8>>| -> Box<dyn Fn(&Path)> {
            Box::new(move |root: &Path| {
                let p = root.join(rel);
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, f(text)).unwrap();
            })
        };
    let variants: Vec<Variant> = vec![
        (
            "latin-1 in the proxy config",
            "proxy-upstream",
            rewrite(
                lb,
                Box::new(|t| {
                    let mut b = b"# r\xe9partiteur\n".to_vec();
                    b.extend(t.into_bytes());
                    b
                }),
            ),
        ),
        (
            "utf-16 proxy config",
            "proxy-upstream",
            rewrite(lb, Box::new(move |t| utf16(&t))),
        ),
        (
            "tabs",
            "proxy-upstream",
            rewrite(
                lb,
                Box::new(|t| {
                    t.replace("        server ", "\tserver\t")
                        .replace("    upstream backend {", "\tupstream\tbackend\t{")
                        .into_bytes()
                }),
            ),
        ),
        (
            "one-line upstream",
            "proxy-upstream",
            rewrite(
                lb,
                Box::new(|t| {
                    t.replace(
                "    upstream backend {\n        server 172.72.0.95:6443;\n        server 172.72.0.96:6443;\n        server 172.72.0.97:6443;\n    }",
                "    upstream backend { server 172.72.0.95:6443; server 172.72.0.96:6443; server 172.72.0.97:6443; }",
            )
            .into_bytes()
                }),
            ),
        ),
        (
            "over 1 MiB",
            "config-unreadable",
            rewrite(
                lb,
                Box::new(|t| {
                    format!(
                        "{}{t}",
                        "# padding padding padding padding padding padding padding\n"
                            .repeat(20_000)
                    )
                    .into_bytes()
                }),
            ),
        ),
        (
            "latin-1 in the unit",
            "etcd-servers-flag",
            rewrite(
                api,
                Box::new(|t| {
                    let mut b = b"# caf\xe9\n".to_vec();
                    b.extend(t.into_bytes());
                    b
                }),
            ),
        ),
        (
            "utf-16 unit",
            "etcd-servers-flag",
            rewrite(api, Box::new(move |t| utf16(&t))),
        ),
        (
            "an included upstream",
            "proxy-upstream",
            Box::new(|root: &Path| {
                let p = root.join("etc/kube-lb/conf/kube-lb.conf");
                let text = std::fs::read_to_string(&p).unwrap();
                let start = text.find("    upstream backend {").unwrap();
                let end = text[start..].find("    }\n").unwrap() + start + 6;
                let inc = root.join("srv/lb/upstreams");
                std::fs::create_dir_all(&inc).unwrap();
                std::fs::write(inc.join("apiservers.conf"), &text[start..end]).unwrap();
                let out = format!(
                    "{}    include /srv/lb/upstreams/*.conf;\n{}",
                    &text[..start],
                    &text[end..]
                );
                std::fs::write(&p, out).unwrap();
            }),
        ),
    ];
    for (what, id, break_it) in variants {
        let dir = fixture("binary");
        let root = dir.path();
        break_it(root);
        let args: Vec<String> = [
            "--root",
            &s(root),
            "--state-dir",
            &s(&root.join("state")),
            "--retire",
            "172.72.0.96",
        ]
        .map(String::from)
        .to_vec();
        let (code, report) = preflight(&args);
        assert_eq!(code, 1, "{what}: {report}");
        assert!(
            ids(&report).0.contains(id),
            "{what}: expected {id} to fail: {report}"
        );
        let msg = messages(&report, id);
        let file = if id == "etcd-servers-flag" {
            "kube-apiserver.service"
        } else if what == "an included upstream" {
            "apiservers.conf"
        } else {
            "kube-lb.conf"
        };
        assert!(msg.contains(file), "{what}: {msg}");
    }
}

/// kubeasz VIP move to 192.168.1.40:8443: `/root/.kube/config` is read without being named,
/// and every fix keeps port 8443; the kube-lb kubeconfig on 127.0.0.1 and the
/// controller-manager's on its own apiserver stay.
#[test]
fn kubeasz_vip_with_a_port_keeps_it_in_every_fix() {
    let dir = fixture("kubeasz-ecdsa");
    let root = dir.path();
    let proxy_kc =
        std::fs::read_to_string(root.join("etc/kubernetes/kube-proxy.kubeconfig")).unwrap();
    std::fs::create_dir_all(root.join("root/.kube")).unwrap();
    std::fs::write(
        root.join("root/.kube/config"),
        proxy_kc.replace("https://127.0.0.1:6443", "https://192.168.1.39:8443"),
    )
    .unwrap();
    // The apiserver of this node (192.168.1.1) and a controller-manager kubeconfig on it.
    let unit_dir = root.join("etc/systemd/system");
    std::fs::create_dir_all(&unit_dir).unwrap();
    std::fs::write(
        unit_dir.join("kube-apiserver.service"),
        "[Service]\nExecStart=/usr/local/bin/kube-apiserver \\\n  --advertise-address=192.168.1.1 \\\n  --tls-cert-file=/etc/kubernetes/ssl/kubernetes.pem\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/kubernetes/kube-controller-manager.kubeconfig"),
        proxy_kc
            .replace("https://127.0.0.1:6443", "https://192.168.1.1:6443")
            .replace("kube-proxy", "system:kube-controller-manager"),
    )
    .unwrap();
    let args = |vip: &str| -> Vec<String> {
        [
            "--root",
            &s(root),
            "--vip",
            vip,
            "--offline",
            "--state-dir",
            &s(&root.join("state")),
        ]
        .map(String::from)
        .to_vec()
    };
    let (code, report) = preflight(&args("192.168.1.40:8443"));
    assert_eq!(code, 1, "{report}");
    let vip = fixes(&report, "kubeconfig-vip");
    assert_eq!(vip.len(), 1, "{report}");
    assert!(
        vip[0].contains("root/.kube/config")
            && vip[0].ends_with("--server=https://192.168.1.40:8443"),
        "{vip:?}"
    );
    let stays = messages(&report, "kubeconfig-vip");
    assert!(
        stays.contains("kube-controller-manager.kubeconfig (cluster kubernetes) stays on this node's apiserver"),
        "{stays}"
    );
    assert!(
        !report.to_string().contains("192.168.1.40:6443"),
        "{report}"
    );
    assert!(
        fixes(&report, "vip-san")[0].ends_with("--add-san 192.168.1.40"),
        "{report}"
    );
    // Retiring the master it points at moves it to the VIP, port included.
    let mut retire = args("192.168.1.40:8443");
    retire.extend(["--retire".into(), "192.168.1.39".into()]);
    let (_, report) = preflight(&retire);
    assert_eq!(
        fixes(&report, "kubeconfig-retired"),
        [format!(
            "kubectl --kubeconfig {} config set-cluster kubernetes --server=https://192.168.1.40:8443",
            s(&root.join("root/.kube/config"))
        )],
        "{report}"
    );
    // No port given: 6443.
    let (_, report) = preflight(&args("192.168.1.40"));
    assert!(
        fixes(&report, "kubeconfig-vip")[0].ends_with("--server=https://192.168.1.40:6443"),
        "{report}"
    );
}

/// preflight checks that the state directory could be created, and does not create it.
#[test]
fn the_state_dir_is_probed_not_created() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let state = root.join("var/lib/certs/state");
    let run = |state: &Path| {
        preflight(&["--root", &s(root), "--now", NOW, "--state-dir", &s(state)].map(String::from))
    };
    let (_, report) = run(&state);
    assert!(!state.exists() && !root.join("var/lib/certs").exists());
    assert_eq!(statuses(&report, "backup-dir"), ["pass"], "{report}");
    let msg = messages(&report, "backup-dir");
    assert!(
        msg.contains("does not exist yet")
            && msg.contains(&format!("{} where", s(&root.join("var/lib")))),
        "{msg}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(root.join("var/lib"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".certs-probe"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Under a file: it can never be created.
    let (code, report) = run(&root.join("etc/kubernetes/admin.conf/state"));
    assert_eq!(code, 1);
    assert!(
        messages(&report, "backup-dir")
            .to_lowercase()
            .contains("not a directory"),
        "{report}"
    );
}

#[test]
fn live_etcd_membership_health_leader_and_quorum() {
    let dir = fixture("etcd-loopback");
    let pki = dir.path().join("etc/ssl/etcd/ssl");
    let cluster = crate::etcd::EtcdCluster::start(&pki);
    let base = |retire: &[&str]| -> Vec<String> {
        let mut a = vec![
            s(&pki),
            "--etcd".into(),
            "https://127.0.0.11:2379".into(),
            "--etcd".into(),
            "https://127.0.0.12:2379".into(),
            "--etcd-cert".into(),
            s(&pki.join("admin-etcd1.pem")),
            "--etcd-key".into(),
            s(&pki.join("admin-etcd1-key.pem")),
            "--etcd-ca".into(),
            s(&pki.join("ca.pem")),
            "--state-dir".into(),
            s(&dir.path().join("state")),
        ];
        for r in retire {
            a.extend(["--retire".to_string(), r.to_string()]);
        }
        a
    };
    let (_, report) = preflight(&base(&["127.0.0.13"]));
    let by_id = |id: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["id"] == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(by_id("etcd-members")[0]["status"], "pass");
    assert!(
        by_id("etcd-members")[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("3 members"),
        "{report}"
    );
    assert_eq!(by_id("etcd-health")[0]["status"], "pass", "{report}");
    let retired = &by_id("etcd-retired-member")[0];
    assert_eq!(retired["status"], "warn");
    assert!(
        retired["fix"]
            .as_str()
            .unwrap()
            .starts_with("etcdctl member remove "),
        "{retired}"
    );
    assert_eq!(
        by_id("etcd-quorum-after")[0]["status"],
        "warn",
        "two members left is an even count"
    );
    assert!(!by_id("etcd-leader").is_empty());

    // Retiring the leader is a warning with snapshot advice.
    let leader = leader_address(&cluster);
    let (_, report) = preflight(&base(&[&leader]));
    let leader_check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "etcd-leader")
        .unwrap()
        .clone();
    assert_eq!(leader_check["status"], "warn", "{report}");
    assert!(
        leader_check["fix"].as_str().unwrap().contains("snapshot"),
        "{leader_check}"
    );

    // Retiring all three: nothing left, and removing them at once breaks quorum.
    let (code, report) = preflight(&base(&["127.0.0.11", "127.0.0.12", "127.0.0.13"]));
    assert_eq!(code, 1);
    let (failed, warned) = ids(&report);
    assert!(
        failed.contains("etcd-quorum-after") && warned.contains("etcd-quorum-during"),
        "{report}"
    );

    // One member stopped: health fails and names it.
    cluster.stop_member(3);
    let (code, report) = preflight(&base(&[]));
    assert_eq!(code, 1);
    let health = messages(&report, "etcd-health");
    assert!(
        health.contains("etcd3") && health.contains("1 of 3"),
        "{health}"
    );
}

/// The address of the current leader, asked of etcd itself.
fn leader_address(cluster: &crate::etcd::EtcdCluster) -> String {
    let out = cluster.etcdctl(&["endpoint", "status", "-w", "json"]);
    let statuses: Value = serde_json::from_slice(&out.stdout).unwrap();
    for st in statuses.as_array().unwrap() {
        if st["Status"]["leader"] == st["Status"]["header"]["member_id"] {
            let ep = st["Endpoint"].as_str().unwrap();
            return ep
                .trim_start_matches("https://")
                .split(':')
                .next()
                .unwrap()
                .to_string();
        }
    }
    panic!("no leader in {statuses}");
}

#[test]
fn unreachable_and_silent_endpoints_are_bounded_warnings() {
    let dir = fixture("kubeadm");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap(); // accepts, never answers
    let silent_addr = silent.local_addr().unwrap();
    let args: Vec<String> = vec![
        "--root".into(),
        s(dir.path()),
        "--state-dir".into(),
        s(&dir.path().join("state")),
        "--now".into(),
        NOW.into(),
        "--timeout".into(),
        "1s".into(),
        "--endpoint".into(),
        format!("https://{closed_addr}"),
        "--endpoint".into(),
        format!("https://{silent_addr}"),
        "--vip".into(),
        format!("127.0.0.1:{}", closed_addr.port()),
    ];
    let (_, report) = preflight(&args);
    let endpoint = messages(&report, "endpoint-tls");
    assert!(
        endpoint.contains(&closed_addr.to_string()) && endpoint.contains(&silent_addr.to_string()),
        "{endpoint}"
    );
    let statuses: BTreeSet<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "endpoint-tls" || c["id"] == "vip-endpoint")
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, BTreeSet::from(["warn"]), "{report}");
    drop(silent);
}

/// A real nginx `stream` proxy on a loopback VIP in front of two TLS "apiservers" whose
/// certificate lacks the VIP: the probe fails naming the served SANs; after a reissue with the
/// VIP it passes.
#[test]
fn nginx_vip_in_front_of_apiservers() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let vip = "127.0.0.20";
    let start = |cert: &Path| {
        (
            tls_server(cert, &pki.join("apiserver.key"), None),
            tls_server(cert, &pki.join("apiserver.key"), None),
        )
    };
    let (a, b) = start(&pki.join("apiserver.crt"));
    let nginx = Nginx::start(dir.path(), vip, &[a, b]);
    let args = |root: &Path, port: u16| -> Vec<String> {
        vec![
            "--root".into(),
            s(root),
            "--vip".into(),
            format!("{vip}:{port}"),
            "--state-dir".into(),
            s(&root.join("state")),
            "--now".into(),
            NOW.into(),
            "--timeout".into(),
            "3s".into(),
        ]
    };
    let (_, report) = preflight(&args(dir.path(), nginx.port));
    let probe = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "vip-endpoint")
        .unwrap()
        .clone();
    assert_eq!(probe["status"], "fail", "{probe}");
    let msg = probe["message"].as_str().unwrap();
    assert!(
        msg.contains("10.21.22.73") && msg.contains("not 127.0.0.20"),
        "{msg}"
    );

    let bundle = dir.path().join("bundle");
    let run = certs([
        "reissue",
        &s(&pki.join("apiserver.crt")),
        "--add-san",
        vip,
        "--out",
        &s(&bundle),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::copy(bundle.join("apiserver.crt"), pki.join("apiserver.crt")).unwrap();
    let (a2, b2) = start(&pki.join("apiserver.crt"));
    drop(nginx);
    let nginx = Nginx::start(dir.path(), vip, &[a2, b2]);
    let (_, report) = preflight(&args(dir.path(), nginx.port));
    let probe = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "vip-endpoint")
        .unwrap()
        .clone();
    assert_eq!(probe["status"], "pass", "{probe}");
    drop(nginx);
}

/// nginx in the foreground with a stream block, killed on drop.
struct Nginx {
    child: std::process::Child,
    port: u16,
}

impl Nginx {
    fn start(dir: &Path, vip: &str, upstreams: &[std::net::SocketAddr]) -> Nginx {
        let prefix = dir.join(format!("nginx-{}", upstreams[0].port()));
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let port = {
            let l = std::net::TcpListener::bind((vip, 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let servers: String = upstreams
            .iter()
            .map(|u| format!("    server {u};\n"))
            .collect();
        let module = [
            "/usr/lib/nginx/modules/ngx_stream_module.so",
            "/usr/share/nginx/modules/ngx_stream_module.so",
        ]
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| format!("load_module {p};\n"))
        .unwrap_or_default();
        let conf = format!(
            "{module}daemon off;\nmaster_process off;\nerror_log {logs}/error.log;\npid {logs}/nginx.pid;\nevents {{ worker_connections 64; }}\nstream {{\n  upstream apiservers {{\n{servers}  }}\n  server {{\n    listen {vip}:{port};\n    proxy_pass apiservers;\n  }}\n}}\n",
            logs = prefix.join("logs").display()
        );
        let conf_path = prefix.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = std::process::Command::new("nginx")
            .args(["-p", &s(&prefix), "-c", &s(&conf_path)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx is installed (tests/debian.sh installs nginx and libnginx-mod-stream)");
        // Wait until it listens (bounded); the guard kills it if it never does.
        let nginx = Nginx { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect((vip, port)).is_ok() {
                return nginx;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        drop(nginx);
        panic!(
            "nginx did not listen on {vip}:{port}: {}",
            std::fs::read_to_string(prefix.join("logs/error.log")).unwrap_or_default()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
