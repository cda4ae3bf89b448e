//! Node roots: the fake `/` of each member ([`write_node_root`]), the settings it gives
//! etcd and the fake `systemctl` that restarts its member (see the parent module doc).

use super::*;

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
pub(super) fn initial_cluster() -> String {
    (1..=MEMBERS)
        .map(|n| format!("etcd{n}=https://{}:{PEER_PORT}", ip(n)))
        .collect::<Vec<_>>()
        .join(",")
}

/// The etcd binary, as a unit names it: the first `etcd` on PATH (`/usr/bin/etcd` from the
/// Debian package).
pub(super) fn etcd_binary() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .expect("etcd is installed (Debian package etcd-server)")
}

/// The settings of member `n`, as etcd flag names and values with the paths of a real node.
pub(super) fn member_settings(n: usize) -> Vec<(&'static str, String)> {
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
         Description=etcd member etcd{n} (loopback test cluster, tests/cli/etcd/)\n\
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
                "# Environment file for etcd member etcd{n} (loopback test cluster, tests/cli/etcd/)\n{}\n",
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
pub(super) fn fake_systemctl(
    n: usize,
    calls: &Path,
    member_sh: &Path,
    conf: &Path,
    restart: &Path,
) -> String {
    format!(
        r#"#!/bin/sh
# A fake systemctl for the node of member etcd{n} (tests/cli/etcd/): the unit etcd
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
