//! A real three-member etcd cluster with TLS (client and peer) on loopback, for tests that must
//! prove that restarting members one at a time costs no client request; and the smoke tests of
//! that harness.
//!
//! Members `etcd1`..`etcd3` listen on `127.0.0.11`..`127.0.0.13`, client port 2379, peer port
//! 2380, with the certificates of `fixtures/etcd-loopback/etc/ssl/etcd/ssl` (whose SANs cover
//! exactly those addresses, localhost and 127.0.0.1).
//!
//! **Parallel tests are serialised, not spread over addresses**: a cluster holds a process-wide
//! mutex for its whole life and, against other test runs on the same machine (another checkout,
//! another `cargo test`), a TCP listener on `127.0.0.11:2390` used as a lock (the kernel frees it
//! when the process dies, however it dies). A second [`EtcdCluster::start`] waits for the first
//! cluster to be dropped. Cluster tests therefore run one at a time while the other tests of the
//! binary run in parallel with them.
//!
//! Members run detached from the test process (own session, pid file, log file per member), so
//! that an external program — `certs rollout --restart-cmd etcd-N='sh …/restart-N.sh'` — can
//! restart them. The logic is `tests/cli/etcd/member.sh`, copied into the cluster's work dir
//! next to one `start-N.sh` / `stop-N.sh` / `restart-N.sh` per member. No etcd outlives the test
//! run: [`Drop`] stops every member, and each start also leaves a watchdog that kills its member
//! once the test process is gone (killed runs included).
//!
//! **Node roots.** [`EtcdCluster::start`] passes each member the flags member.sh knows, with the
//! certificates of one shared directory. [`EtcdCluster::start_nodes`] instead gives member `n`
//! a node root `<work>/nodeN`: a fake `/` of a node, written by [`write_node_root`], holding
//! `etc/systemd/system/etcd.service`, `etc/ssl/etcd/ssl/` (copies of `ca.pem`, `ca-key.pem`,
//! `member-etcdN.pem` / `-key.pem`, `admin-etcd1.pem` / `-key.pem`; keys 0600) and, per
//! [`Form`], either every setting as a `--flag=value` of the unit's `ExecStart=` (binary /
//! kubeasz) or `EnvironmentFile=/etc/etcd.env` with `ETCD_*` variables and a bare
//! `ExecStart=` (kubespray). The files say what a real node's would (`/etc/ssl/etcd/ssl/…`,
//! `/var/lib/etcd`), and **the member is launched from them**: member.sh reads the unit (joining
//! `\` continuations; the last `ExecStart=`, every `EnvironmentFile=`), reads the environment
//! files, and runs the command with those variables in a clean environment (PATH added, as
//! systemd does), **the only change being that absolute paths under `/etc/` and `/var/` get the
//! node root in front** (see member.sh for the exact rule). Editing a node's files and restarting
//! its member is therefore what editing a real node and `systemctl restart etcd` would do; a
//! tool given `--root <node root>` reads exactly what the member runs with. Each node also gets
//! a fake `systemctl` ([`EtcdCluster::fake_bin`]) whose `restart etcd` restarts its member.

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use certs::sys::tls::{https_request, probe, ProbeOptions, Target};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

use crate::util::{file_serial, fixture, s_ref, write_exec};

mod client;
mod node_root;
mod smoke;

pub use client::*;
pub use node_root::*;

/// Number of members; they are numbered 1..=MEMBERS.
pub const MEMBERS: usize = 3;
const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
/// Held (bound) by the process that runs a cluster: the cross-process lock.
const LOCK_ADDR: &str = "127.0.0.11:2390";
/// How long to wait for another test run's cluster to go away.
const LOCK_WAIT: Duration = Duration::from_secs(600);
/// How long to wait for the member ports to be free (a killed run's watchdogs need ~3 s).
const PORTS_WAIT: Duration = Duration::from_secs(20);
/// How long members get to report healthy, after a start or a restart.
const HEALTH_WAIT: Duration = Duration::from_secs(30);
/// Budget of one client request, failover included.
const REQUEST_BUDGET: Duration = Duration::from_secs(2);
/// Budget of one attempt on one endpoint.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between two put-then-get rounds of the load generator.
const LOAD_INTERVAL: Duration = Duration::from_millis(20);
/// Seconds between SIGTERM and SIGKILL when the cluster is dropped.
const DROP_GRACE_SECONDS: u32 = 2;
/// Lines of each member log quoted in failure messages.
const LOG_TAIL: usize = 25;

const MEMBER_SH: &str = include_str!("member.sh");

static IN_PROCESS: Mutex<()> = Mutex::new(());

/// The address of member `n` (1-based).
fn ip(n: usize) -> String {
    assert!(
        (1..=MEMBERS).contains(&n),
        "no etcd member {n} (1..={MEMBERS})"
    );
    format!("127.0.0.1{n}")
}

/// `'…'` for sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------------------------
// Lock
// ---------------------------------------------------------------------------------------------

/// Exclusive use of 127.0.0.11-13:2379/2380, within this process and across processes.
struct ClusterLock {
    _listener: TcpListener,
    _guard: MutexGuard<'static, ()>,
}

fn lock() -> ClusterLock {
    let guard = IN_PROCESS.lock().unwrap_or_else(|p| p.into_inner());
    let deadline = Instant::now() + LOCK_WAIT;
    let mut said = false;
    loop {
        match TcpListener::bind(LOCK_ADDR) {
            Ok(listener) => {
                return ClusterLock {
                    _listener: listener,
                    _guard: guard,
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                if !said {
                    eprintln!(
                        "etcd harness: {LOCK_ADDR} is held by another test run's cluster; waiting"
                    );
                    said = true;
                }
                thread::sleep(Duration::from_millis(250));
            }
            Err(e) => panic!("etcd harness: cannot take the cluster lock {LOCK_ADDR}: {e}"),
        }
    }
}

/// Waits until nothing listens on the member ports (a killed run's members are being killed
/// by their watchdogs); panics after [`PORTS_WAIT`].
fn wait_ports_free() {
    let deadline = Instant::now() + PORTS_WAIT;
    loop {
        let busy: Vec<String> = (1..=MEMBERS)
            .flat_map(|n| [CLIENT_PORT, PEER_PORT].map(|port| format!("{}:{port}", ip(n))))
            .filter(|addr| TcpListener::bind(addr.as_str()).is_err())
            .collect();
        if busy.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "etcd harness: {} still in use after {PORTS_WAIT:?}: an etcd not started by this \
             harness, or left over by a run whose watchdogs could not act? (`ss -ltnp`)",
            busy.join(", ")
        );
        thread::sleep(Duration::from_millis(250));
    }
}

// ---------------------------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------------------------

/// A running three-member etcd cluster; stopped when dropped.
pub struct EtcdCluster {
    pki: PathBuf,
    work_path: PathBuf,
    /// `None` once kept for a post-mortem (dropped while panicking).
    work: Option<tempfile::TempDir>,
    form: Option<Form>,
    /// The node roots of members 1..=3 (empty without them).
    nodes: Vec<PathBuf>,
    client: Client,
    _lock: ClusterLock,
}

impl EtcdCluster {
    /// Starts the cluster on the certificates in `pki_dir` (`ca.pem`, `member-etcdN.pem` /
    /// `-key.pem`, `admin-etcd1.pem` / `-key.pem`; give a copy, the members use the files in
    /// place) and waits until every member is healthy. Waits first for any other cluster of
    /// this or another test process to be dropped (see the module doc).
    pub fn start(pki_dir: &Path) -> EtcdCluster {
        EtcdCluster::launch(pki_dir, None)
    }

    /// Starts the cluster with one node root per member (see the module doc): the files of
    /// `pki_dir` (which also needs `ca-key.pem`) are copied into `<work>/nodeN` by
    /// [`write_node_root`], and each member runs what its node's `etcd.service` (and, in
    /// [`Form::Env`], `/etc/etcd.env`) says. Waits until every member is healthy.
    pub fn start_nodes(pki_dir: &Path, form: Form) -> EtcdCluster {
        EtcdCluster::launch(pki_dir, Some(form))
    }

    fn launch(pki_dir: &Path, form: Option<Form>) -> EtcdCluster {
        let began = Instant::now();
        let pki = std::path::absolute(pki_dir).expect("absolute pki dir");
        let mut stems: Vec<String> = vec!["ca".into(), "admin-etcd1".into()];
        stems.extend((1..=MEMBERS).map(|n| format!("member-etcd{n}")));
        let needed: Vec<String> = stems
            .iter()
            .flat_map(|stem| [format!("{stem}.pem"), format!("{stem}-key.pem")])
            .filter(|f| form.is_some() || f != "ca-key.pem")
            .collect();
        let missing: Vec<&String> = needed.iter().filter(|f| !pki.join(f).is_file()).collect();
        assert!(
            missing.is_empty(),
            "etcd harness: {} lacks {missing:?}",
            pki.display()
        );
        let client = Client::new(&pki);

        let lock = lock();
        let locked = began.elapsed();
        wait_ports_free();

        let work = tempfile::Builder::new()
            .prefix("certs-etcd-")
            .tempdir()
            .expect("etcd work dir");
        let work_path = work.path().to_path_buf();
        write_exec(&work_path.join("member.sh"), MEMBER_SH);
        let member_sh = sh_quote(s_ref(&work_path.join("member.sh")));
        let file = |name: String| sh_quote(s_ref(&work_path.join(name)));
        let mut nodes = Vec::new();
        for n in 1..=MEMBERS {
            let common = format!(
                "name=etcd{n}\n\
                 pidfile={pid}\n\
                 log={log}\n\
                 owner={owner}\n",
                pid = file(format!("etcd{n}.pid")),
                log = file(format!("etcd{n}.log")),
                owner = std::process::id(),
            );
            let conf = match form {
                None => {
                    let pki_file = |name: String| sh_quote(s_ref(&pki.join(name)));
                    format!(
                        "# etcd{n} of the loopback test cluster (tests/cli/etcd/), for member.sh.\n\
                         {common}\
                         ip={ip}\n\
                         initial_cluster={initial_cluster}\n\
                         data_dir={data}\n\
                         ca={ca}\n\
                         cert={cert}\n\
                         key={key}\n",
                        ip = ip(n),
                        initial_cluster = initial_cluster(),
                        data = file(format!("etcd{n}.data")),
                        ca = pki_file("ca.pem".into()),
                        cert = pki_file(format!("member-etcd{n}.pem")),
                        key = pki_file(format!("member-etcd{n}-key.pem")),
                    )
                }
                Some(form) => {
                    let root = work_path.join(format!("node{n}"));
                    write_node_root(&root, n, form, &pki);
                    let conf = format!(
                        "# etcd{n} of the loopback test cluster (tests/cli/etcd/), for member.sh:\n\
                         # the member runs what the unit of its node root says.\n\
                         {common}\
                         root={root}\n\
                         unit={unit}\n",
                        root = sh_quote(s_ref(&root)),
                        unit = sh_quote(s_ref(&root.join(UNIT))),
                    );
                    nodes.push(root);
                    conf
                }
            };
            fs::write(work_path.join(format!("etcd{n}.conf")), conf).expect("write member conf");
            for (action, what) in [
                (
                    "start",
                    "Starts member etcd{n} in the background and returns at once",
                ),
                (
                    "stop",
                    "Stops member etcd{n}: SIGTERM, then SIGKILL after 15 s",
                ),
                (
                    "restart",
                    "Restarts member etcd{n}: stop, then start (returns at once)",
                ),
            ] {
                let script = format!(
                    "#!/bin/sh\n# {} (tests/cli/etcd/, see member.sh).\nexec sh {member_sh} {action} {}\n",
                    what.replace("{n}", &n.to_string()),
                    file(format!("etcd{n}.conf")),
                );
                write_exec(&work_path.join(format!("{action}-{n}.sh")), &script);
            }
            let bin = work_path.join(format!("bin-{n}"));
            fs::create_dir(&bin).expect("fake bin dir");
            write_exec(
                &bin.join("systemctl"),
                &fake_systemctl(
                    n,
                    &work_path.join(format!("systemctl-{n}.calls")),
                    &work_path.join("member.sh"),
                    &work_path.join(format!("etcd{n}.conf")),
                    &work_path.join(format!("restart-{n}.sh")),
                ),
            );
        }

        let cluster = EtcdCluster {
            pki,
            work_path,
            work: Some(work),
            form,
            nodes,
            client,
            _lock: lock,
        };
        // From here on, a panic drops the cluster: its members are stopped.
        for n in 1..=MEMBERS {
            cluster.start_member(n);
        }
        cluster.wait_all_healthy();
        eprintln!(
            "etcd harness: cluster ({}) healthy in {:?} (lock waited {locked:?}), work dir {}",
            match form {
                None => "flags from the harness".to_string(),
                Some(form) => format!("node roots, {form:?}"),
            },
            began.elapsed(),
            cluster.work_path.display()
        );
        cluster
    }

    /// How the members are configured: `None` for [`start`](Self::start), the form of the
    /// node roots for [`start_nodes`](Self::start_nodes).
    pub fn form(&self) -> Option<Form> {
        self.form
    }

    /// The node root of member `n` (`<work>/nodeN`); panics unless started with
    /// [`start_nodes`](Self::start_nodes).
    pub fn node_root(&self, n: usize) -> &Path {
        let _ = ip(n);
        assert!(
            !self.nodes.is_empty(),
            "etcd harness: this cluster has no node roots (EtcdCluster::start_nodes has)"
        );
        &self.nodes[n - 1]
    }

    /// `<node root of n>/etc/ssl/etcd/ssl`: the certificates member `n` uses.
    pub fn node_pki(&self, n: usize) -> PathBuf {
        self.node_root(n).join(NODE_PKI)
    }

    /// A directory holding a fake `systemctl` for member `n`'s node, to put first on PATH:
    /// `systemctl [flags] restart etcd` restarts member `n` (as [`restart_cmd`](Self::restart_cmd)
    /// does), `systemctl [flags] is-active etcd` exits 0 if it runs and 3 if not (printing
    /// `active` / `inactive` without `--quiet`/`-q`), `systemctl daemon-reload` does nothing;
    /// any other call exits 5 with `Unit X.service not found.` on stderr. (`etcd.service` is
    /// `etcd`.) Every call is logged: [`systemctl_calls`](Self::systemctl_calls).
    pub fn fake_bin(&self, n: usize) -> PathBuf {
        let _ = ip(n);
        self.work_path.join(format!("bin-{n}"))
    }

    /// The calls made to member `n`'s fake `systemctl` so far, one per call: its arguments
    /// joined with spaces.
    pub fn systemctl_calls(&self, n: usize) -> Vec<String> {
        let _ = ip(n);
        fs::read_to_string(self.work_path.join(format!("systemctl-{n}.calls")))
            .map(|s| s.lines().map(String::from).collect())
            .unwrap_or_default()
    }

    /// The data dir member `n` runs with: `<work>/etcdN.data`, or `<node root>/var/lib/etcd`.
    pub fn data_dir(&self, n: usize) -> PathBuf {
        match self.form {
            None => self.work_path.join(format!("etcd{n}.data")),
            Some(_) => self.node_root(n).join("var/lib/etcd"),
        }
    }

    /// The command line of the running member `n` (empty when stopped).
    pub fn cmdline(&self, n: usize) -> Vec<String> {
        self.pid(n)
            .map(|pid| nul_list(&format!("/proc/{pid}/cmdline")))
            .unwrap_or_default()
    }

    /// The environment (`KEY=VALUE`) of the running member `n` (empty when stopped).
    pub fn environ(&self, n: usize) -> Vec<String> {
        self.pid(n)
            .map(|pid| nul_list(&format!("/proc/{pid}/environ")))
            .unwrap_or_default()
    }

    /// `https://127.0.0.1N:2379` for every member.
    pub fn endpoints(&self) -> Vec<String> {
        (1..=MEMBERS).map(|n| self.endpoint(n)).collect()
    }

    /// `https://127.0.0.1N:2379`.
    pub fn endpoint(&self, n: usize) -> String {
        format!("https://{}:{CLIENT_PORT}", ip(n))
    }

    /// The `pki_dir` given to start: the certificates the members use, or, with node roots, the
    /// originals of their copies (see [`node_pki`](Self::node_pki)). The harness's own client
    /// and etcdctl use its `ca.pem` and `admin-etcd1` identity.
    pub fn pki_dir(&self) -> &Path {
        &self.pki
    }

    /// The cluster's work dir: scripts, `etcdN.conf`, `etcdN.data/` (or `nodeN/`), `etcdN.log`,
    /// `etcdN.pid`, `bin-N/systemctl` and `systemctl-N.calls`.
    pub fn work_dir(&self) -> &Path {
        &self.work_path
    }

    /// `<work>/<action>-N.sh` (`action`: start, stop or restart).
    pub fn script(&self, action: &str, n: usize) -> PathBuf {
        assert!(
            ["start", "stop", "restart"].contains(&action),
            "no {action} script"
        );
        let _ = ip(n);
        self.work_path.join(format!("{action}-{n}.sh"))
    }

    /// The shell command that restarts member `n`: `sh '<work>/restart-N.sh'`. It returns as
    /// soon as the member is started again (not yet healthy).
    pub fn restart_cmd(&self, n: usize) -> String {
        format!("sh {}", sh_quote(s_ref(&self.script("restart", n))))
    }

    /// Stops member `n` (SIGTERM, SIGKILL after 15 s); returns once it has exited.
    pub fn stop_member(&self, n: usize) {
        self.run_script("stop", n);
    }

    /// Starts member `n` in the background; does not wait for it to be healthy. (Not `start`:
    /// that is the cluster's constructor.)
    pub fn start_member(&self, n: usize) {
        self.run_script("start", n);
    }

    /// The pid of member `n` as its pid file says (`None` when stopped).
    pub fn pid(&self, n: usize) -> Option<u32> {
        fs::read_to_string(self.work_path.join(format!("etcd{n}.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Whether member `n`'s pid file names a live etcd with this member's data dir (in its
    /// command line, `--data-dir=…`, or its environment, `ETCD_DATA_DIR=…`).
    pub fn is_running(&self, n: usize) -> bool {
        let dir = self.data_dir(n);
        let markers = [
            format!("--data-dir={}", s_ref(&dir)),
            format!("ETCD_DATA_DIR={}", s_ref(&dir)),
        ];
        self.cmdline(n)
            .into_iter()
            .chain(self.environ(n))
            .any(|item| markers.contains(&item))
    }

    /// `etcdctl endpoint health` against member `n` alone.
    pub fn member_health(&self, n: usize) -> bool {
        self.etcdctl_on(&[self.endpoint(n)], &["endpoint", "health"])
            .status
            .success()
    }

    /// Waits (at most 30 s) until member `n` reports healthy; panics with the member logs.
    pub fn wait_healthy(&self, n: usize) {
        self.wait_members_healthy(&[n]);
    }

    /// Waits (at most 30 s) until every member reports healthy; panics with the member logs.
    pub fn wait_all_healthy(&self) {
        let all: Vec<usize> = (1..=MEMBERS).collect();
        self.wait_members_healthy(&all);
    }

    fn wait_members_healthy(&self, members: &[usize]) {
        let deadline = Instant::now() + HEALTH_WAIT;
        let mut pending = members.to_vec();
        loop {
            pending.retain(|&n| !self.member_health(n));
            if pending.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let last = self.etcdctl_on(
                    &pending
                        .iter()
                        .map(|&n| self.endpoint(n))
                        .collect::<Vec<_>>(),
                    &["endpoint", "health"],
                );
                panic!(
                    "etcd harness: member(s) {pending:?} not healthy after {HEALTH_WAIT:?}\n\
                     etcdctl endpoint health: {}{}\n{}",
                    String::from_utf8_lossy(&last.stdout),
                    String::from_utf8_lossy(&last.stderr),
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// The serial number (uppercase hex, as `openssl x509 -noout -serial` prints it after
    /// `serial=`) of the certificate member `n` serves on its client port right now.
    pub fn served_serial(&self, n: usize) -> String {
        let target: Target = self.endpoint(n).parse().expect("endpoint");
        let mut opts = self.client.opts.clone();
        opts.timeout = Duration::from_secs(5);
        let found =
            probe(&target, &opts).unwrap_or_else(|e| panic!("etcd harness: probing {target}: {e}"));
        let leaf = found
            .leaf()
            .unwrap_or_else(|| panic!("{target} served no certificate"));
        // The serial as openssl prints it: uppercase hex, no leading zero bytes.
        certs::pki::cert::CertInfo::from_der(leaf)
            .unwrap_or_else(|e| panic!("{target}: the served leaf does not parse: {e}"))
            .serial
    }

    /// `ETCDCTL_API=3 etcdctl --endpoints=<all> --cacert --cert --key (admin) ARGS`, with 2 s
    /// dial and 5 s command timeouts. A later `--endpoints=…` in `args` overrides the default.
    pub fn etcdctl(&self, args: &[&str]) -> Output {
        self.etcdctl_on(&self.endpoints(), args)
    }

    fn etcdctl_on(&self, endpoints: &[String], args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")))
            .arg(format!("--cacert={}", s_ref(&self.pki.join("ca.pem"))))
            .arg(format!(
                "--cert={}",
                s_ref(&self.pki.join("admin-etcd1.pem"))
            ))
            .arg(format!(
                "--key={}",
                s_ref(&self.pki.join("admin-etcd1-key.pem"))
            ))
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("etcdctl is installed (Debian package etcd-client)")
    }

    /// One put through the v3 JSON gateway, failing over across the members like
    /// [`spawn_client`](Self::spawn_client) does (at most 2 s).
    pub fn put(&self, key: &str, value: &str) -> Result<(), String> {
        self.client.put(key, value.as_bytes(), 0)
    }

    /// One linearizable get through the v3 JSON gateway, with failover (at most 2 s).
    pub fn get(&self, key: &str) -> Result<Option<String>, String> {
        self.client
            .get(key, 0)
            .map(|v| v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Starts a background client: put a fresh key, then get it back from another member,
    /// every ~20 ms, with failover across the members, until [`ClientLoad::stop`].
    pub fn spawn_client(&self) -> ClientLoad {
        let client = self.client.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::Builder::new()
            .name("etcd-client-load".into())
            .spawn(move || run_load(&client, &flag))
            .expect("spawn the load thread");
        ClientLoad {
            stop,
            handle: Some(handle),
        }
    }

    /// The last lines of every member log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in 1..=MEMBERS {
            let path = self.work_path.join(format!("etcd{n}.log"));
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
            out.push_str(&format!(
                "--- {} (last {} lines)\n{}\n",
                path.display(),
                tail.len(),
                tail.join("\n")
            ));
        }
        out
    }

    fn run_script(&self, action: &str, n: usize) {
        let script = self.script(action, n);
        let out = Command::new("sh")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .expect("run sh");
        assert!(
            out.status.success(),
            "etcd harness: {} failed ({}): {}{}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        let began = Instant::now();
        // All members at once: SIGTERM, then SIGKILL after DROP_GRACE. (A leader stopped with
        // SIGTERM first tries to hand its leadership over, to members that are stopping too:
        // 7 s before it gives up. The data is thrown away, a graceful stop buys nothing.)
        let stops: Vec<_> = (1..=MEMBERS)
            .filter_map(|n| {
                Command::new("sh")
                    .arg(self.script("stop", n))
                    .env("ETCD_STOP_GRACE", DROP_GRACE_SECONDS.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok()
            })
            .collect();
        for mut stop in stops {
            let _ = stop.wait();
        }
        for n in 1..=MEMBERS {
            if self.is_running(n) {
                if let Some(pid) = self.pid(n) {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        eprintln!("etcd harness: cluster stopped in {:?}", began.elapsed());
        if thread::panicking() {
            if let Some(work) = self.work.take() {
                let kept = work.keep();
                eprintln!(
                    "etcd harness: work dir kept for the post-mortem: {}\n{}",
                    kept.display(),
                    self.logs()
                );
            }
        }
    }
}

/// The NUL-separated items of a /proc file (empty when unreadable).
fn nul_list(path: &str) -> Vec<String> {
    fs::read(path)
        .map(|bytes| {
            bytes
                .split(|&b| b == 0)
                .filter(|item| !item.is_empty())
                .map(|item| String::from_utf8_lossy(item).into_owned())
                .collect()
        })
        .unwrap_or_default()
}
