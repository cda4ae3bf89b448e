//! `certs cluster`: the playbook it renders, run by real `ansible-playbook` on three simulated
//! hosts of this machine (`ansible_connection=local`, one node root per host passed to certs as
//! `--root`) around the REAL three-member etcd cluster of tests/cli/etcd.rs, whose members run
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
                    "[Unit]\nDescription=kube-apiserver of node{n} (an openssl s_server, tests/cli/cluster.rs)\n\n[Service]\nExecStart=/usr/local/bin/kube-apiserver \\\n  --advertise-address=127.0.0.1{n} \\\n  --bind-address=127.0.0.1{n} \\\n  --secure-port=6443 \\\n  --tls-cert-file=/etc/kubernetes/ssl/apiserver.crt \\\n  --tls-private-key-file=/etc/kubernetes/ssl/apiserver.key \\\n  --client-ca-file=/etc/kubernetes/ssl/ca.crt \\\n  --etcd-servers=https://127.0.0.11:2379,https://127.0.0.12:2379,https://127.0.0.13:2379\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n"
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
# node{n}'s systemctl (tests/cli/cluster.rs): kube-apiserver is an openssl s_server; etcd goes
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

#[test]
fn renders_kubespray_and_kubeasz_inventories_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("hosts.ini");
    std::fs::write(
        &inv,
        "[all]\nnode1 ip=10.6.0.11 ansible_connection=local\nnode2 ip=10.6.0.12 ansible_connection=local\nnode3 ip=10.6.0.13 ansible_connection=local\nnode4 ip=10.6.0.14 ansible_connection=local\n[kube_control_plane]\nnode1\nnode2\nnode3\n[etcd]\nnode1\nnode2\nnode3\n[kube_node]\nnode4\n[k8s_cluster:children]\nkube_control_plane\nkube_node\n",
    )
    .unwrap();
    let out = dir.path().join("pb");
    let run = certs([
        "cluster",
        "--inventory",
        &s(&inv),
        "--retire",
        "node3",
        "--out",
        &s(&out),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ansible-playbook -i"), "{}", run.stdout);
    let vars = std::fs::read_to_string(out.join("vars.yml")).unwrap();
    assert!(
        vars.contains("certs_change_args: [\"--retire\", \"10.6.0.13\"]"),
        "{vars}"
    );
    assert!(
        vars.contains("certs_nodes: [\"node1\", \"node2\", \"node4\"]"),
        "{vars}"
    );
    let pb = std::fs::read_to_string(out.join("playbook.yml")).unwrap();
    assert!(
        pb.contains("hosts: [\"node1\", \"node2\"]\n  serial: 1"),
        "{pb}"
    );
    let (ok, log) = ansible_playbook(&out, &inv, &["--syntax-check"]);
    assert!(ok, "{log}");
    // ansible-lint when installed (tests/debian.sh installs it from PyPI into a venv when it
    // can): run with its own directory first on PATH, so it uses the ansible it came with.
    let lint_bin = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|d| d.join("ansible-lint").is_file()));
    let lint = match &lint_bin {
        Some(dir) => Command::new(dir.join("ansible-lint"))
            .current_dir(&out)
            .env("PATH", crate::util::path_with(dir))
            .args(["--offline", "--nocolor", "playbook.yml"])
            .output(),
        None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    match lint {
        Ok(o) => assert!(
            o.status.success(),
            "ansible-lint:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("ansible-lint not installed: skipped"),
    }

    // kubeasz: hosts by address, kube_master.
    let asz = dir.path().join("kubeasz.ini");
    std::fs::write(
        &asz,
        "[etcd]\n192.168.1.1 NODE_NAME=etcd1\n192.168.1.2 NODE_NAME=etcd2\n192.168.1.3 NODE_NAME=etcd3\n\n[kube_master]\n192.168.1.1 k8s_nodename='master-01'\n192.168.1.2 k8s_nodename='master-02'\n192.168.1.3 k8s_nodename='master-03'\n\n[kube_node]\n192.168.1.4 k8s_nodename='worker-01'\n\n[all:vars]\nSECURE_PORT=\"6443\"\n",
    )
    .unwrap();
    let out2 = dir.path().join("pb2");
    let run = certs([
        "cluster",
        "--inventory",
        &s(&asz),
        "--retire",
        "master-03",
        "--vip",
        "192.168.1.40:8443",
        "--out",
        &s(&out2),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let vars = std::fs::read_to_string(out2.join("vars.yml")).unwrap();
    assert!(
        vars.contains(
            "certs_change_args: [\"--vip\", \"192.168.1.40:8443\", \"--retire\", \"192.168.1.3\"]"
        ),
        "{vars}"
    );
    let (ok, log) = ansible_playbook(&out2, &asz, &["--syntax-check"]);
    assert!(ok, "{log}");

    // Refused: exit 2, one line, nothing written.
    for (args, why) in [
        (vec!["--retire", "node9"], "node9"),
        (vec!["--vip", "10.0.0.1/24"], "--vip"),
        (vec![], "nothing asked"),
        (
            vec![
                "--retire", "node1", "--retire", "node2", "--retire", "node3",
            ],
            "at least one control-plane host",
        ),
    ] {
        let bad = dir.path().join("bad");
        let mut argv = vec!["cluster", "--inventory", inv.to_str().unwrap(), "--out"];
        argv.push(bad.to_str().unwrap());
        argv.extend(args.iter().copied());
        let run = certs(&argv);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(why), "{args:?}: {}", run.stderr);
        assert!(!bad.exists(), "{args:?}");
    }
}

/// A bundle made by `certs change --root A` installs on a copy B of the node (`--root B`), its
/// targets re-rooted; one made from other files is refused, and `--rebase` installs it onto a
/// node whose certificate changed since when the new certificate pairs with its key.
#[test]
fn bundles_reroot_and_rebase() {
    let made = fixture("etcd-loopback");
    let a = made.path();
    crate::etcd::write_node_root(&a.join("node"), 1, Form::Env, &a.join(NODE_PKI));
    let node_a = a.join("node");
    let bin = a.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_exec(&bin.join("systemctl"), "#!/bin/sh\nexit 0\n");
    let bundle = a.join("bundle");
    let path = format!("{}:{}", s(&bin), std::env::var("PATH").unwrap());
    let run = crate::util::certs_env(
        [
            "change",
            "--root",
            &s(&node_a),
            "--retire",
            "etcd3",
            "--offline",
            "--out",
            &s(&bundle),
            "--state-dir",
            &s(&a.join("state")),
        ],
        &[("PATH", path.as_str())],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["root"], s(&node_a));

    // Node B: a copy of A elsewhere. The plan targets B's files.
    let b = tempfile::tempdir().unwrap();
    let node_b = b.path().join("node");
    Command::new("cp")
        .args(["-a", &s(&node_a), &s(&node_b)])
        .status()
        .unwrap();
    let plan = |extra: &[&str]| {
        let mut argv = vec![
            "rollout".to_string(),
            "plan".into(),
            s(&bundle),
            "--root".into(),
            s(&node_b),
            "--no-etcd-membership".into(),
            "-o".into(),
            "json".into(),
        ];
        argv.extend(extra.iter().map(|x| x.to_string()));
        crate::util::certs_env(&argv, &[("PATH", path.as_str())])
    };
    let run = plan(&[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let targets: Vec<String> = run.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["target"].as_str().unwrap().to_string())
        .collect();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| t.starts_with(&s(&node_b))),
        "{targets:?}"
    );

    // B's member certificate renewed since (same key, new serial): the apply refuses it...
    let member = node_b.join(NODE_PKI).join("member-etcd1.pem");
    let ca = node_b.join(NODE_PKI).join("ca.pem");
    let ca_key = a.join(NODE_PKI).join("ca-key.pem");
    let renewed = b.path().join("renewed");
    let run = certs([
        "renew",
        &s(&member),
        "--ca",
        &s(&ca),
        "--ca-key",
        &s(&ca_key),
        "--all",
        "--out",
        &s(&renewed),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let renewed_pem = walkdir::WalkDir::new(&renewed)
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "member-etcd1.pem")
        .unwrap();
    std::fs::copy(renewed_pem.path(), &member).unwrap();
    let before = tree_digest(&node_b);
    let apply = |extra: &[&str]| {
        let mut argv = vec![
            "rollout".to_string(),
            "apply".into(),
            s(&bundle),
            "--root".into(),
            s(&node_b),
            "--no-etcd-membership".into(),
            "--dry-run".into(),
        ];
        argv.extend(extra.iter().map(|x| x.to_string()));
        crate::util::certs_env(&argv, &[("PATH", path.as_str())])
    };
    // (--dry-run proves the plan; the executor's own check refuses the changed file.)
    let run = crate::util::certs_env(
        [
            "rollout",
            "apply",
            &s(&bundle),
            "--root",
            &s(&node_b),
            "--no-etcd-membership",
            "--state-dir",
            &s(&b.path().join("state")),
            "--restart-cmd",
            "etcd=true",
            "--health",
            "etcd=https://127.0.0.1:1/health",
        ],
        &[("PATH", path.as_str())],
    );
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("member-etcd1.pem")
            && run.stderr.contains("the file the bundle was made from"),
        "{}",
        run.stderr
    );
    assert_eq!(
        tree_digest(&node_b),
        before,
        "a refused apply changed the node"
    );
    // ... and --rebase takes it: the plan records B's file as the one it replaces.
    let run = plan(&["--rebase"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let sha = openssl(["dgst", "-sha256", "-r", &s(&member)]);
    let sha = sha.split_whitespace().next().unwrap();
    let entry = run.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == s(&member))
        .cloned()
        .unwrap();
    assert_eq!(entry["old_sha256"], sha);
    let serial = x509(&member, "-serial");
    assert_eq!(
        entry["old_serial"]
            .as_str()
            .unwrap()
            .to_uppercase()
            .replace(':', ""),
        serial.trim().trim_start_matches("serial=")
    );
    assert!(apply(&["--rebase"]).code == 0);

    // A certificate with another key on B: refused even with --rebase, one line naming it.
    let other_key = b.path().join("other.key");
    openssl(["genrsa", "-out", &s(&other_key), "2048"]);
    std::fs::copy(
        &other_key,
        node_b.join(NODE_PKI).join("member-etcd1-key.pem"),
    )
    .unwrap();
    let run = plan(&["--rebase"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("member-etcd1.pem: --rebase: the new certificate's key is not on this node"),
        "{}",
        run.stderr
    );
    // A configuration file changed since: refused with --rebase too.
    let env = node_b.join("etc/etcd.env");
    let mut text = std::fs::read_to_string(&env).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&env, text).unwrap();
    let run = plan(&["--rebase"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("etcd.env: --rebase: the config changed since the bundle was made"),
        "{}",
        run.stderr
    );
}

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
