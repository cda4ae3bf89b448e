//! Against live servers on loopback: a real etcd cluster (membership, health, leader,
//! quorum), unreachable and silent endpoints, and a real nginx VIP in front of two apiservers.

use super::*;

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
