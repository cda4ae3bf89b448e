//! `certs cluster`: the playbook it renders, run by real `ansible-playbook` on three simulated
//! hosts of this machine (`ansible_connection=local`, one node root per host passed to certs as
//! `--root`) around the REAL three-member etcd cluster of tests/cli/etcd/, whose members run
//! from their host's files. Each host also runs an "apiserver" (openssl s_server serving the
//! host's own kube-apiserver certificate on 127.0.0.1N:6443, started by the host's fake
//! systemctl from its unit's flags). And `certs rollout apply --rebase`, and bundles re-rooted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::etcd::{EtcdCluster, Form, NODE_PKI};
use crate::util::{certs, fixture, openssl, s, tree_digest, write_exec};

mod bundles;
mod inventories;
mod retirement;

/// `IP:…`/`DNS:…` SANs of a certificate, by openssl.
fn sans(cert: &Path) -> Vec<String> {
    let text = openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", &s(cert)]);
    let mut v: Vec<String> = text
        .lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|x| x.trim().replace("IP Address:", "IP:"))
        .filter(|x| !x.is_empty())
        .collect();
    v.sort();
    v
}

fn x509(cert: &Path, what: &str) -> String {
    openssl([
        "x509",
        "-noout",
        what,
        "-nameopt",
        "RFC2253",
        "-in",
        &s(cert),
    ])
}

pub(crate) fn ansible_playbook(dir: &Path, inventory: &Path, extra: &[&str]) -> (bool, String) {
    let out = Command::new("ansible-playbook")
        .current_dir(dir)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
        .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible-tmp"))
        .args(["-i", &s(inventory), "playbook.yml"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("ansible-playbook is installed (Debian package ansible-core)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `node1 : ok=12 changed=3 …` of the recap, per host.
pub(crate) fn recap(log: &str) -> Vec<(String, usize, usize)> {
    let tail = log.split("PLAY RECAP").last().unwrap_or("");
    tail.lines()
        .filter_map(|l| {
            let (host, rest) = l.split_once(':')?;
            let num = |k: &str| -> Option<usize> {
                rest.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{k}=")))?
                    .parse()
                    .ok()
            };
            Some((host.trim().to_string(), num("changed")?, num("failed")?))
        })
        .collect()
}

/// The three hosts: each node root of the etcd harness gets a kube CA certificate, its own
/// kube-apiserver certificate and key, a kube-apiserver unit, and a fake systemctl that runs
/// the "apiserver" and hands etcd to the harness's. Only host 1 keeps CA keys.
pub(crate) struct Hosts {
    work: PathBuf,
    roots: Vec<PathBuf>,
}

impl Hosts {
    pub(crate) fn new(cluster: &EtcdCluster, work: &Path) -> Hosts {
        let kube = work.join("kube-ca");
        std::fs::create_dir_all(&kube).unwrap();
        let ca_key = kube.join("ca.key");
        let ca = kube.join("ca.crt");
        openssl(["genrsa", "-out", &s(&ca_key), "2048"]);
        openssl([
            "req",
            "-x509",
            "-new",
            "-key",
            &s(&ca_key),
            "-subj",
            "/CN=kubernetes",
            "-days",
            "3650",
            "-out",
            &s(&ca),
        ]);
        let mut roots = Vec::new();
        for n in 1..=3 {
            let root = cluster.node_root(n).to_path_buf();
            let ssl = root.join("etc/kubernetes/ssl");
            std::fs::create_dir_all(&ssl).unwrap();
            std::fs::copy(&ca, ssl.join("ca.crt")).unwrap();
            if n == 1 {
                std::fs::copy(&ca_key, ssl.join("ca.key")).unwrap();
                std::fs::set_permissions(
                    ssl.join("ca.key"),
                    std::fs::Permissions::from_mode(0o600),
                )
                .unwrap();
            } else {
                // The etcd CA key stays on the CA host only.
                std::fs::remove_file(root.join(NODE_PKI).join("ca-key.pem")).unwrap();
            }
            let key = ssl.join("apiserver.key");
            let csr = work.join(format!("apiserver-{n}.csr"));
            let ext = work.join(format!("apiserver-{n}.ext"));
            openssl(["genrsa", "-out", &s(&key), "2048"]);
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            openssl([
                "req",
                "-new",
                "-key",
                &s(&key),
                "-subj",
                "/CN=kube-apiserver",
                "-out",
                &s(&csr),
            ]);
            std::fs::write(
                &ext,
                format!(
                    "subjectAltName=DNS:kubernetes,DNS:kubernetes.default,DNS:node{n},IP:127.0.0.11,IP:127.0.0.12,IP:127.0.0.13\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                ),
            )
            .unwrap();
            openssl([
                "x509",
                "-req",
                "-in",
                &s(&csr),
                "-CA",
                &s(&ca),
                "-CAkey",
                &s(&ca_key),
                "-CAcreateserial",
                "-days",
                "365",
                "-extfile",
                &s(&ext),
                "-out",
                &s(&ssl.join("apiserver.crt")),
            ]);
            std::fs::write(
                root.join("etc/systemd/system/kube-apiserver.service"),
                format!(
                    "[Unit]\nDescription=kube-apiserver of node{n} (an openssl s_server, tests/cli/cluster/)\n\n[Service]\nExecStart=/usr/local/bin/kube-apiserver \\\n  --advertise-address=127.0.0.1{n} \\\n  --bind-address=127.0.0.1{n} \\\n  --secure-port=6443 \\\n  --tls-cert-file=/etc/kubernetes/ssl/apiserver.crt \\\n  --tls-private-key-file=/etc/kubernetes/ssl/apiserver.key \\\n  --client-ca-file=/etc/kubernetes/ssl/ca.crt \\\n  --etcd-servers=https://127.0.0.11:2379,https://127.0.0.12:2379,https://127.0.0.13:2379\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n"
                ),
            )
            .unwrap();
            std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
            let www = work.join(format!("www-{n}"));
            std::fs::create_dir_all(&www).unwrap();
            std::fs::write(www.join("readyz"), "ok").unwrap();
            let bin = work.join(format!("host{n}-bin"));
            std::fs::create_dir_all(&bin).unwrap();
            let start = format!(
                "cd '{www}' && setsid openssl s_server -quiet -WWW -accept 127.0.0.1{n}:6443 -cert '{root}/etc/kubernetes/ssl/apiserver.crt' -key '{root}/etc/kubernetes/ssl/apiserver.key' </dev/null >>'{work}/apiserver-{n}.log' 2>&1 & echo $! >'{work}/apiserver-{n}.pid'",
                www = s(&www),
                root = s(&root),
                work = s(work),
            );
            write_exec(
                &bin.join("systemctl"),
                &format!(
                    r#"#!/bin/sh
# node{n}'s systemctl (tests/cli/cluster/): kube-apiserver is an openssl s_server; etcd goes
# to the etcd harness's fake systemctl. A file `fail-etcd-{n}` makes the next `restart etcd`
# fail (an injected failure).
printf '%s\n' "$*" >>'{work}/systemctl-{n}.calls'
verb= unit=
for a; do case "$a" in -*) ;; *) if [ -z "$verb" ]; then verb=$a; else unit=${{a%.service}}; fi ;; esac; done
pid() {{ cat '{work}/apiserver-{n}.pid' 2>/dev/null; }}
case "$verb:$unit" in
restart:kube-apiserver)
    p=$(pid); [ -n "$p" ] && kill "$p" 2>/dev/null
    i=0; while [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
    {start}
    exit 0 ;;
is-active:kube-apiserver)
    p=$(pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && exit 0; exit 3 ;;
restart:etcd)
    if [ -e '{work}/fail-etcd-{n}' ]; then rm -f '{work}/fail-etcd-{n}'; echo "injected failure" >&2; exit 1; fi ;;
esac
exec '{harness}/systemctl' "$@"
"#,
                    work = s(work),
                    harness = s(&cluster.fake_bin(n)),
                ),
            );
            let started = Command::new("sh").args(["-c", &start]).status().unwrap();
            assert!(started.success());
            roots.push(root);
        }
        // The kube CA key is on node1 now, and nowhere else.
        std::fs::remove_file(&ca_key).unwrap();
        Hosts {
            work: work.to_path_buf(),
            roots,
        }
    }

    pub(crate) fn root(&self, n: usize) -> &Path {
        &self.roots[n - 1]
    }

    fn bin(&self, n: usize) -> PathBuf {
        self.work.join(format!("host{n}-bin"))
    }

    /// A YAML inventory, kubespray's groups, every host local with its own root.
    pub(crate) fn inventory(&self, cluster: &EtcdCluster) -> PathBuf {
        let path = std::env::var("PATH").unwrap_or_default();
        let mut hosts = String::new();
        for n in 1..=3 {
            let root = self.root(n);
            hosts.push_str(&format!(
                "    node{n}:\n      ansible_connection: local\n      ansible_python_interpreter: /usr/bin/python3\n      ip: 127.0.0.1{n}\n      etcd_member_name: etcd{n}\n      certs_root: {root}\n      certs_bin: {root}/usr/local/bin/certs\n      certs_environment:\n        PATH: \"{bin}:{harness}:{path}\"\n      certs_rollout_args: [\"--health-interval\", \"500ms\", \"--health-timeout\", \"60s\", \"--restart-timeout\", \"30s\"]\n",
                root = s(root),
                bin = s(&self.bin(n)),
                harness = s(&cluster.fake_bin(n)),
            ));
        }
        let text = format!(
            "all:\n  hosts:\n{hosts}  children:\n    kube_control_plane:\n      hosts:\n        node1:\n        node2:\n        node3:\n    etcd:\n      hosts:\n        node1:\n        node2:\n        node3:\n    kube_node:\n      hosts: {{}}\n    k8s_cluster:\n      children:\n        kube_control_plane:\n        kube_node:\n"
        );
        let file = self.work.join("hosts.yaml");
        std::fs::write(&file, text).unwrap();
        file
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for n in 1..=3 {
            if let Ok(pid) = std::fs::read_to_string(self.work.join(format!("apiserver-{n}.pid"))) {
                let _ = Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

/// Renders the playbook for `args` into `<work>/<name>` and syntax-checks it.
fn render(hosts: &Hosts, inventory: &Path, name: &str, args: &[&str]) -> PathBuf {
    let out = hosts.work.join(name);
    let mut argv: Vec<String> = vec![
        "cluster".into(),
        "--inventory".into(),
        s(inventory),
        "--certs-binary".into(),
        env!("CARGO_BIN_EXE_certs").into(),
        "--out".into(),
        s(&out),
    ];
    argv.extend(args.iter().map(|a| a.to_string()));
    let run = certs(&argv);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (ok, log) = ansible_playbook(&out, inventory, &["--syntax-check"]);
    assert!(ok, "{log}");
    out
}

/// Every file under the node roots, the work dir and the playbook dirs whose bytes are those of
/// a private key of the hosts: where each private key is.
pub(crate) fn key_copies(places: &[&Path], key: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for place in places {
        for e in walkdir::WalkDir::new(place).into_iter().flatten() {
            if e.file_type().is_file() && std::fs::read(e.path()).is_ok_and(|b| b == key) {
                out.push(e.path().to_path_buf());
            }
        }
    }
    out
}

/// `ansible-playbook` under `strace -f` (every file each process opens, into `trace`). The
/// components restarted during the run live on (traced): once ansible-playbook itself has
/// exited, strace is stopped (SIGTERM: it detaches from them) and the outcome read.
fn traced_playbook(dir: &Path, inventory: &Path, trace: &Path) -> (bool, String) {
    let log = trace.with_extension("log");
    let out = std::fs::File::create(&log).unwrap();
    let mut child = Command::new("strace")
        .args([
            "-f",
            "-I",
            "2",
            "-e",
            "trace=open,openat",
            "-e",
            "signal=none",
            "-o",
            &s(trace),
        ])
        .arg("ansible-playbook")
        .current_dir(dir)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible-tmp"))
        .args(["-i", &s(inventory), "playbook.yml"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("strace is installed (Debian package strace)");
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let code = loop {
        // `PID  +++ exited with N +++` of the first process (ansible-playbook).
        let text = std::fs::read_to_string(trace).unwrap_or_default();
        let first = text.split_whitespace().next().unwrap_or("").to_string();
        let exit = text.lines().find_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 6 && w[0] == first && w[1..4] == ["+++", "exited", "with"])
                .then(|| w[4].parse::<i32>().ok())
        });
        if let Some(code) = exit {
            break code;
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ansible-playbook still runs after 10 min"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    (
        code == Some(0),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}
