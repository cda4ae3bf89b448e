//! `certs preflight` on the seed scenarios (exact sets of failed and warned checks), against a
//! real etcd cluster, and through a real nginx stream proxy on a loopback "VIP".

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::{certs, fixture, tls_server, NOW};

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

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
    assert_eq!(
        warned,
        set(&["ca-lifetime", "retire-stale-san"]),
        "{report}"
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
    let flag = messages(&report, "etcd-servers-flag");
    assert!(
        flag.contains("kube-apiserver.service")
            && flag.contains("--etcd-servers=https://172.72.0.95:2379"),
        "{flag}"
    );
    // Retiring every master fails outright.
    let mut all = args.clone();
    all.extend(["--retire".into(), "172.72.0.95".into()]);
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
