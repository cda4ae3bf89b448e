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

const MEMBER_SH: &str = include_str!("etcd/member.sh");

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
// Node roots
// ---------------------------------------------------------------------------------------------

/// Where a node keeps its etcd certificates, relative to its root.
pub const NODE_PKI: &str = "etc/ssl/etcd/ssl";
/// The systemd unit of etcd, relative to a node root.
pub const UNIT: &str = "etc/systemd/system/etcd.service";
/// The environment file of a [`Form::Env`] node, relative to its root.
pub const ENV_FILE: &str = "etc/etcd.env";

/// How a node root's `etcd.service` gives etcd its settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Binary / kubeasz style: every setting is a `--flag=value` of `ExecStart=`.
    Flags,
    /// kubespray style: `EnvironmentFile=/etc/etcd.env` of `ETCD_*` variables and a bare
    /// `ExecStart=`.
    Env,
}

/// `etcd1=https://127.0.0.11:2380,…`.
fn initial_cluster() -> String {
    (1..=MEMBERS)
        .map(|n| format!("etcd{n}=https://{}:{PEER_PORT}", ip(n)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The etcd binary, as a unit names it: the first `etcd` on PATH (`/usr/bin/etcd` from the
/// Debian package).
fn etcd_binary() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .expect("etcd is installed (Debian package etcd-server)")
}

/// The settings of member `n`, as etcd flag names and values with the paths of a real node.
fn member_settings(n: usize) -> Vec<(&'static str, String)> {
    let client = format!("https://{}:{CLIENT_PORT}", ip(n));
    let peer = format!("https://{}:{PEER_PORT}", ip(n));
    let pki = |file: &str| format!("/{NODE_PKI}/{file}");
    vec![
        ("name", format!("etcd{n}")),
        ("data-dir", "/var/lib/etcd".into()),
        ("listen-client-urls", client.clone()),
        ("advertise-client-urls", client),
        ("listen-peer-urls", peer.clone()),
        ("initial-advertise-peer-urls", peer),
        ("initial-cluster", initial_cluster()),
        ("initial-cluster-state", "new".into()),
        ("initial-cluster-token", "certs-test".into()),
        ("cert-file", pki(&format!("member-etcd{n}.pem"))),
        ("key-file", pki(&format!("member-etcd{n}-key.pem"))),
        ("trusted-ca-file", pki("ca.pem")),
        ("client-cert-auth", "true".into()),
        ("peer-cert-file", pki(&format!("member-etcd{n}.pem"))),
        ("peer-key-file", pki(&format!("member-etcd{n}-key.pem"))),
        ("peer-trusted-ca-file", pki("ca.pem")),
        ("peer-client-cert-auth", "true".into()),
        ("pre-vote", "true".into()),
        ("logger", "zap".into()),
        ("log-outputs", "stderr".into()),
    ]
}

/// Writes the node root of member `n` at `root` (a fake `/`, see the module doc), in `form`:
/// `etc/systemd/system/etcd.service` (and `etc/etcd.env` for [`Form::Env`]) with the paths of a
/// real node, `etc/ssl/etcd/ssl/` with copies of `pki`'s `ca.pem`, `ca-key.pem`,
/// `member-etcdN.pem` / `-key.pem` and `admin-etcd1.pem` / `-key.pem` (keys 0600), and an empty
/// `var/lib/`. Starts nothing: [`EtcdCluster::start_nodes`] calls it for each member, and a
/// test that needs a node without a running etcd calls it alone.
pub fn write_node_root(root: &Path, n: usize, form: Form, pki: &Path) {
    let _ = ip(n);
    let ssl = root.join(NODE_PKI);
    fs::create_dir_all(&ssl).unwrap_or_else(|e| panic!("creating {}: {e}", ssl.display()));
    fs::create_dir_all(root.join("etc/systemd/system")).expect("unit dir");
    fs::create_dir_all(root.join("var/lib")).expect("var/lib");
    let member = format!("member-etcd{n}");
    for stem in ["ca", "admin-etcd1", member.as_str()] {
        for (file, mode) in [
            (format!("{stem}.pem"), 0o644),
            (format!("{stem}-key.pem"), 0o600),
        ] {
            let (from, to) = (pki.join(&file), ssl.join(&file));
            fs::copy(&from, &to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
            fs::set_permissions(&to, fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
    let etcd = etcd_binary();
    let settings = member_settings(n);
    let head = format!(
        "[Unit]\n\
         Description=etcd member etcd{n} (loopback test cluster, tests/cli/etcd.rs)\n\
         Documentation=https://github.com/etcd-io/etcd\n\
         After=network.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=notify\n"
    );
    let tail = "Restart=always\n\
                RestartSec=5\n\
                LimitNOFILE=65536\n\
                \n\
                [Install]\n\
                WantedBy=multi-user.target\n";
    let unit = match form {
        Form::Flags => {
            let flags: Vec<String> = settings
                .iter()
                .map(|(flag, value)| format!("  --{flag}={value}"))
                .collect();
            format!(
                "{head}ExecStart={} \\\n{}\n{tail}",
                s_ref(&etcd),
                flags.join(" \\\n")
            )
        }
        Form::Env => {
            let vars: Vec<String> = settings
                .iter()
                .map(|(flag, value)| {
                    format!("ETCD_{}={value}", flag.to_uppercase().replace('-', "_"))
                })
                .collect();
            let env = format!(
                "# Environment file for etcd member etcd{n} (loopback test cluster, tests/cli/etcd.rs)\n{}\n",
                vars.join("\n")
            );
            fs::write(root.join(ENV_FILE), env).expect("write etcd.env");
            format!(
                "{head}User=root\nEnvironmentFile=/{ENV_FILE}\nExecStart={}\nNotifyAccess=all\n{tail}",
                s_ref(&etcd)
            )
        }
    };
    fs::write(root.join(UNIT), unit).expect("write etcd.service");
}

/// The fake `systemctl` of member `n`'s node; see [`EtcdCluster::fake_bin`].
fn fake_systemctl(n: usize, calls: &Path, member_sh: &Path, conf: &Path, restart: &Path) -> String {
    format!(
        r#"#!/bin/sh
# A fake systemctl for the node of member etcd{n} (tests/cli/etcd.rs): the unit etcd
# (etcd.service) is that member. Every call is logged, one line each, to the calls file.
printf '%s\n' "$*" >>{calls}
verb= quiet= units=
for arg; do
    case "$arg" in
    -q | --quiet) quiet=1 ;;
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$arg; else units="$units $arg"; fi ;;
    esac
done
not_found() {{
    echo "Unit ${{1%.service}}.service not found." >&2
    exit 5
}}
case "$verb" in
daemon-reload) exit 0 ;;
restart | is-active)
    [ -n "$units" ] || not_found ""
    for unit in $units; do
        case "$unit" in etcd | etcd.service) ;; *) not_found "$unit" ;; esac
    done
    ;;
*)
    set -- $units
    not_found "${{1:-$verb}}"
    ;;
esac
if [ "$verb" = restart ]; then
    exec sh {restart}
fi
if sh {member_sh} status {conf}; then
    [ -n "$quiet" ] || echo active
    exit 0
fi
[ -n "$quiet" ] || echo inactive
exit 3
"#,
        calls = sh_quote(s_ref(calls)),
        restart = sh_quote(s_ref(restart)),
        member_sh = sh_quote(s_ref(member_sh)),
        conf = sh_quote(s_ref(conf)),
    )
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
                        "# etcd{n} of the loopback test cluster (tests/cli/etcd.rs), for member.sh.\n\
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
                        "# etcd{n} of the loopback test cluster (tests/cli/etcd.rs), for member.sh:\n\
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
                    "#!/bin/sh\n# {} (tests/cli/etcd.rs, see member.sh).\nexec sh {member_sh} {action} {}\n",
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

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// A v3 JSON gateway client with the admin identity and failover across the members.
#[derive(Clone)]
struct Client {
    endpoints: Vec<Target>,
    opts: ProbeOptions,
}

impl Client {
    fn new(pki: &Path) -> Client {
        let block = |file: &str| -> pem::Pem {
            let path = pki.join(file);
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            pem::parse(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let ca = block("ca.pem");
        let cert = block("admin-etcd1.pem");
        let key = block("admin-etcd1-key.pem");
        assert_eq!(
            key.tag(),
            "RSA PRIVATE KEY",
            "admin-etcd1-key.pem is PKCS#1"
        );
        Client {
            endpoints: (1..=MEMBERS)
                .map(|n| {
                    format!("https://{}:{CLIENT_PORT}", ip(n))
                        .parse()
                        .expect("endpoint")
                })
                .collect(),
            opts: ProbeOptions {
                roots: Some(vec![CertificateDer::from(ca.into_contents())]),
                timeout: ATTEMPT_TIMEOUT,
                client_identity: Some((
                    vec![CertificateDer::from(cert.into_contents())],
                    PrivateKeyDer::Pkcs1(key.into_contents().into()),
                )),
                ..Default::default()
            },
        }
    }

    /// POSTs `body` to `path`, first on endpoint `first`, then on the next ones in turn until
    /// one answers 200 with JSON or [`REQUEST_BUDGET`] is spent.
    fn call(&self, path: &str, body: &Value, first: usize) -> Result<Value, String> {
        let body = body.to_string();
        let deadline = Instant::now() + REQUEST_BUDGET;
        let count = self.endpoints.len();
        let mut last_error: Vec<Option<String>> = vec![None; count];
        let mut i = first % count;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let errors: Vec<String> = last_error.into_iter().flatten().collect();
                return Err(format!(
                    "no member served it within {REQUEST_BUDGET:?}; last errors: {}",
                    errors.join("; ")
                ));
            }
            let mut opts = self.opts.clone();
            opts.timeout = ATTEMPT_TIMEOUT.min(left);
            let target = &self.endpoints[i];
            match https_request(target, "POST", path, Some(body.as_bytes()), &opts) {
                Ok(resp) if resp.status == 200 => match serde_json::from_slice(&resp.body) {
                    Ok(v) => return Ok(v),
                    Err(e) => last_error[i] = Some(format!("{target}: bad JSON ({e})")),
                },
                Ok(resp) => {
                    last_error[i] = Some(format!(
                        "{target}: HTTP {} {}",
                        resp.status,
                        String::from_utf8_lossy(&resp.body).trim()
                    ))
                }
                Err(e) => last_error[i] = Some(format!("{target}: {e}")),
            }
            i = (i + 1) % count;
            if i == first % count {
                // A whole round failed: do not spin.
                thread::sleep(Duration::from_millis(50).min(left));
            }
        }
    }

    fn put(&self, key: &str, value: &[u8], first: usize) -> Result<(), String> {
        let body = json!({"key": B64.encode(key), "value": B64.encode(value)});
        let answer = self.call("/v3/kv/put", &body, first)?;
        if answer.get("header").is_some() {
            Ok(())
        } else {
            Err(format!("unexpected put answer {answer}"))
        }
    }

    fn get(&self, key: &str, first: usize) -> Result<Option<Vec<u8>>, String> {
        let body = json!({"key": B64.encode(key)});
        let answer = self.call("/v3/kv/range", &body, first)?;
        if answer.get("header").is_none() {
            return Err(format!("unexpected range answer {answer}"));
        }
        let Some(kv) = answer["kvs"].as_array().and_then(|kvs| kvs.first()) else {
            return Ok(None);
        };
        // An empty value is left out of the JSON.
        let value = kv["value"].as_str().unwrap_or("");
        B64.decode(value)
            .map(Some)
            .map_err(|e| format!("range answer value is not base64 ({e}): {answer}"))
    }
}

/// What a [`ClientLoad`] saw. Every put and every get is one request.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests served correctly.
    pub ok: usize,
    /// Requests no member served within 2 s, and gets that returned a wrong value.
    pub failed: usize,
    pub failures: Vec<String>,
    /// The longest time one request took (failover included).
    pub slowest: Duration,
}

/// A background put-then-get loop; see [`EtcdCluster::spawn_client`].
pub struct ClientLoad {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<LoadReport>>,
}

impl ClientLoad {
    /// Stops the loop (after the round in flight, at most ~4 s) and reports.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .expect("load thread")
            .join()
            .expect("load thread panicked")
    }
}

impl Drop for ClientLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn run_load(client: &Client, stop: &AtomicBool) -> LoadReport {
    let mut report = LoadReport::default();
    let prefix = format!(
        "/certs-load/{}-{}/",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let count = client.endpoints.len();
    let mut seq = 0usize;
    let fail = |report: &mut LoadReport, what: String| {
        report.failed += 1;
        report.failures.push(what);
    };
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let key = format!("{prefix}{seq:06}");
        let value = format!("value {seq} of {prefix}");
        let t = Instant::now();
        let put = client.put(&key, value.as_bytes(), seq % count);
        report.slowest = report.slowest.max(t.elapsed());
        if let Err(e) = put {
            fail(&mut report, format!("put {key}: {e}"));
            continue;
        }
        report.ok += 1;
        // Read it back from the next member: a linearizable read must see the put.
        let t = Instant::now();
        let got = client.get(&key, seq % count + 1);
        report.slowest = report.slowest.max(t.elapsed());
        match got {
            Ok(Some(v)) if v == value.as_bytes() => report.ok += 1,
            Ok(Some(v)) => fail(
                &mut report,
                format!(
                    "get {key}: wrong value {:?}, expected {value:?}",
                    String::from_utf8_lossy(&v)
                ),
            ),
            Ok(None) => fail(&mut report, format!("get {key}: not found after its put")),
            Err(e) => fail(&mut report, format!("get {key}: {e}")),
        }
        thread::sleep(LOAD_INTERVAL);
    }
    report
}

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
