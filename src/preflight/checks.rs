//! Checks on what is on disk: the CAs, certificate coverage of a VIP and of the kept members,
//! stale names of retired ones, clients and proxies that still point at them, key files, expiry.

use std::path::Path;

use super::{Check, ConfigFile};
use crate::edit::config::{self, host_port, same_host};
use crate::edit::proxy;
use crate::pki::inventory::{CertEntry, Inventory, Status as CertStatus};
use crate::pki::Role;
use crate::spec::San;

/// What the operator is about to do.
pub struct Change<'a> {
    /// The VIP's host (an address or a name), without its port.
    pub vip: Option<&'a str>,
    /// The VIP's port: the one given with `--vip ADDR:PORT`, else 6443.
    pub vip_port: u16,
    /// Every retired master as the names and addresses the node ties it to (each `--retire`
    /// argument first, then what [`super::names::expand`] adds).
    pub retire: &'a [String],
    /// The kept masters, the same way.
    pub keep: &'a [String],
    /// What the certificates must cover for the kept masters: the addresses of a `--keep` name
    /// the node ties to some, else the argument as given.
    pub keep_cover: &'a [String],
    /// This node's own apiserver addresses (`--advertise-address`, a specific
    /// `--bind-address`): controller-manager and scheduler kubeconfigs on them stay local.
    pub own: &'a [String],
    /// Seconds: expiring within this is reported so it can be reissued in the same change.
    pub window: i64,
    pub now: i64,
}

impl Change<'_> {
    fn retires(&self, host: &str) -> bool {
        self.retire.iter().any(|r| same_host(r, host))
    }

    fn retired_refs(&self) -> Vec<&str> {
        self.retire.iter().map(String::as_str).collect()
    }

    /// Where a client of a retired master should point instead: the VIP (with its port), else a
    /// kept master (an address when one is known) on the port it used.
    fn replacement(&self, port: Option<u16>) -> String {
        let port = port.unwrap_or(6443);
        match (
            self.vip,
            self.keep_cover
                .iter()
                .find(|k| is_ip(k))
                .or(self.keep_cover.first()),
        ) {
            (Some(v), _) => url(v, self.vip_port),
            (None, Some(k)) => url(k, port),
            (None, None) => format!("https://<a kept master or the VIP>:{port}"),
        }
    }
}

fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// `https://HOST:PORT`, an IPv6 host in brackets.
pub fn url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    }
}

fn covers(cert: &CertEntry, who: &str) -> bool {
    match San::parse(who) {
        Ok(San::Ip(ip)) => cert
            .info
            .sans
            .ip
            .iter()
            .any(|s| s.parse::<std::net::IpAddr>().ok() == Some(ip)),
        Ok(San::Dns(d)) => cert
            .info
            .sans
            .dns
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&d)),
        _ => false,
    }
}

fn path(c: &CertEntry) -> String {
    c.location.to_string()
}

/// Certificates that must name the control-plane addresses: apiserver and etcd serving ones.
fn serving<'a>(inv: &'a Inventory, roles: &'a [Role]) -> impl Iterator<Item = &'a CertEntry> + 'a {
    inv.certificates
        .iter()
        .filter(move |c| roles.contains(&c.role) && c.location.embedded.is_none())
}

pub fn ca(inv: &Inventory, now: i64, window: i64) -> Vec<Check> {
    let mut out = Vec::new();
    let cas: Vec<&CertEntry> = inv
        .certificates
        .iter()
        .filter(|c| {
            c.role.is_ca()
                && c.location.embedded.is_none()
                && c.signed_by
                    .is_some_and(|s| std::ptr::eq(&inv.certificates[s], *c))
        })
        .collect();
    if cas.is_empty() {
        out.push(Check::fail(
            "ca-present",
            "no CA certificate found among the scanned files",
            Some("point certs at the node's PKI directory (or --root)".into()),
        ));
        return out;
    }
    let longest_leaf = inv
        .certificates
        .iter()
        .filter(|c| !c.info.is_ca)
        .map(|c| c.info.not_after - c.info.not_before)
        .max()
        .unwrap_or(0);
    for ca in cas {
        let p = path(ca);
        if ca.info.not_after <= now {
            out.push(Check::fail(
                "ca-valid",
                format!(
                    "CA {p} expired at {}",
                    crate::duration::rfc3339(ca.info.not_after)
                ),
                Some("renew the CA before reissuing anything".into()),
            ));
        } else if ca.info.not_before > now {
            out.push(Check::fail(
                "ca-valid",
                format!(
                    "CA {p} is not valid before {}",
                    crate::duration::rfc3339(ca.info.not_before)
                ),
                None,
            ));
        } else {
            out.push(Check::pass(
                "ca-valid",
                format!(
                    "CA {p} valid until {}",
                    crate::duration::rfc3339(ca.info.not_after)
                ),
            ));
        }
        let left = ca.info.not_after - now;
        if left < longest_leaf.max(window) {
            out.push(Check::warn(
                "ca-lifetime",
                format!(
                    "CA {p} ends in {}: certificates issued now will be cut short to that",
                    crate::duration::short_human(left)
                ),
                Some("plan a CA renewal; reissued certificates are clamped to the CA's end".into()),
            ));
        }
        match ca.key.map(|k| &inv.keys[k]) {
            Some(k) => out.push(Check::pass("ca-key", format!("CA {p} has its key {}", k.location))),
            None => out.push(Check::fail(
                "ca-key",
                format!("no private key matching CA {p} was found: a reissue from this CA is impossible here"),
                Some("run on the node that holds the CA key, or pass --ca/--ca-key to certs reissue".into()),
            )),
        }
    }
    out
}

pub fn vip(inv: &Inventory, vip: &str) -> Vec<Check> {
    let certs: Vec<&CertEntry> = serving(inv, &[Role::Apiserver]).collect();
    if certs.is_empty() {
        return vec![Check::warn(
            "vip-san",
            "no apiserver serving certificate found to check the VIP against",
            None,
        )];
    }
    certs
        .iter()
        .map(|c| {
            if covers(c, vip) {
                Check::pass("vip-san", format!("{} covers the VIP {vip}", path(c)))
            } else {
                Check::fail(
                    "vip-san",
                    format!("{} does not cover the VIP {vip}: clients dialling it will fail with \"x509: certificate is valid for {}, not {vip}\"", path(c), c.info.sans.all().collect::<Vec<_>>().join(", ")),
                    Some(format!("certs reissue {} --add-san {vip}", c.location.path.display())),
                )
            }
        })
        .collect()
}

pub fn retirement(inv: &Inventory, change: &Change) -> Vec<Check> {
    let mut out = Vec::new();
    let roles = [Role::Apiserver, Role::EtcdServer, Role::EtcdPeer];
    for c in serving(inv, &roles) {
        let missing: Vec<&String> = change.keep_cover.iter().filter(|k| !covers(c, k)).collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let adds = missing
                .iter()
                .map(|m| format!("--add-san {m}"))
                .collect::<Vec<_>>()
                .join(" ");
            out.push(Check::fail(
                "retire-keep-san",
                format!(
                    "{} ({}) does not cover kept member(s) {list}",
                    path(c),
                    c.role
                ),
                Some(format!(
                    "certs reissue {} {adds}",
                    c.location.path.display()
                )),
            ));
        } else if !change.keep_cover.is_empty() {
            out.push(Check::pass(
                "retire-keep-san",
                format!("{} covers every kept member", path(c)),
            ));
        }
        let stale: Vec<&String> = change.retire.iter().filter(|r| covers(c, r)).collect();
        if !stale.is_empty() {
            let drops = stale
                .iter()
                .map(|m| format!("--drop-san {m}"))
                .collect::<Vec<_>>()
                .join(" ");
            out.push(Check::warn(
                "retire-stale-san",
                format!(
                    "{} ({}) still names retired {}",
                    path(c),
                    c.role,
                    stale
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some(format!(
                    "certs reissue {} {drops}",
                    c.location.path.display()
                )),
            ));
        }
    }
    // The control plane as the etcd certificates know it (every member cert names every member).
    let members: std::collections::BTreeSet<String> =
        serving(inv, &[Role::EtcdServer, Role::EtcdPeer])
            .flat_map(|c| c.info.sans.ip.iter().cloned())
            .filter(|ip| {
                ip.parse::<std::net::IpAddr>()
                    .is_ok_and(|a| !a.is_loopback())
            })
            .collect();
    if !members.is_empty() && !change.retire.is_empty() {
        let left: Vec<&String> = members.iter().filter(|m| !change.retires(m)).collect();
        out.push(if left.is_empty() {
            Check::fail(
                "retire-last-control-plane",
                format!(
                    "retiring {} leaves no control-plane node among {}",
                    change.retire.join(", "),
                    members.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                Some("add the new masters first, then retire the old".into()),
            )
        } else {
            Check::pass(
                "retire-last-control-plane",
                format!(
                    "{} control-plane node(s) remain: {}",
                    left.len(),
                    left.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        });
    }
    out
}

/// Kubeconfigs, node-local proxies, kube-apiserver `--etcd-servers` and etcd
/// `--initial-cluster` that still name retired masters, or that bypass a new VIP.
pub fn clients(inv: &Inventory, configs: &[ConfigFile], change: &Change) -> Vec<Check> {
    let mut out = kubeconfigs(inv, change);
    if change.retire.is_empty() {
        return out;
    }
    for file in configs {
        out.extend(proxy_upstreams(file, change));
        out.extend(etcd_servers(file, change));
        out.extend(initial_cluster(file, change));
    }
    out
}

fn kubeconfigs(inv: &Inventory, change: &Change) -> Vec<Check> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for kc in &inv.kubeconfigs {
        if !seen.insert(&kc.path) {
            continue;
        }
        for cl in &kc.config.clusters {
            let (host, port) = host_port(&cl.server);
            let set = |server: &str| {
                format!(
                    "kubectl --kubeconfig {} config set-cluster {} --server={server}",
                    kc.path.display(),
                    cl.name
                )
            };
            if change.retires(host) {
                out.push(Check::fail(
                    "kubeconfig-retired",
                    format!(
                        "{} (cluster {}) points at retired {}",
                        kc.path.display(),
                        cl.name,
                        cl.server
                    ),
                    Some(set(&change.replacement(port))),
                ));
            } else if let Some(vip) = change.vip {
                let local = matches!(host, "localhost" | "127.0.0.1" | "::1");
                let on_vip = same_host(host, vip) && port.unwrap_or(443) == change.vip_port;
                let own = change.own.iter().any(|o| same_host(o, host));
                if own && local_component(inv, kc) {
                    out.push(Check::pass(
                        "kubeconfig-vip",
                        format!(
                            "{} (cluster {}) stays on this node's apiserver {}",
                            kc.path.display(),
                            cl.name,
                            cl.server
                        ),
                    ));
                } else if !on_vip && !local {
                    let target = url(vip, change.vip_port);
                    out.push(Check::warn(
                        "kubeconfig-vip",
                        format!(
                            "{} (cluster {}) points at {} rather than the VIP {target}",
                            kc.path.display(),
                            cl.name,
                            cl.server
                        ),
                        Some(set(&target)),
                    ));
                }
            }
        }
    }
    out
}

/// A kubeconfig of the controller-manager or the scheduler, which talk to their own node's
/// apiserver whatever the VIP (by user name, or by the role of its client certificate).
fn local_component(inv: &Inventory, kc: &crate::pki::inventory::KubeconfigEntry) -> bool {
    let Some(user) = kc.config.current_user.as_deref() else {
        return false;
    };
    let by_name = matches!(
        user,
        "system:kube-controller-manager" | "system:kube-scheduler"
    );
    let by_cert = kc
        .config
        .users
        .iter()
        .position(|u| u.name == user)
        .and_then(|i| kc.users.get(i))
        .and_then(|(cert, _)| *cert)
        .is_some_and(|c| {
            matches!(
                inv.certificates[c].role,
                Role::ControllerManager | Role::Scheduler
            )
        });
    by_name || by_cert
}

/// nginx/haproxy upstream lines of retired masters: live ones fail (one check per file, the
/// `sed` that removes exactly those lines), drained ones (`down`, `disabled`) pass.
fn proxy_upstreams(file: &ConfigFile, change: &Change) -> Vec<Check> {
    let mut out = Vec::new();
    let all = proxy::servers(&file.text);
    let retired: Vec<&proxy::Server> = all
        .iter()
        .filter(|s| change.retire.iter().any(|r| s.is(r)))
        .collect();
    let at = |s: &proxy::Server| format!("{}:{}", file.path.display(), s.line);
    let endpoint = |s: &proxy::Server| s.port.map_or(s.host.clone(), |p| format!("{}:{p}", s.host));
    for s in retired.iter().filter(|s| s.down) {
        let word = match s.syntax {
            proxy::Syntax::Nginx => "down",
            proxy::Syntax::Haproxy => "disabled",
        };
        out.push(Check::pass(
            "proxy-upstream",
            format!(
                "{} already drained: retired {} is marked {word} (`{}`); the line can go",
                at(s),
                endpoint(s),
                s.text
            ),
        ));
    }
    let live: Vec<&&proxy::Server> = retired.iter().filter(|s| !s.down).collect();
    if live.is_empty() {
        return out;
    }
    let kept: Vec<String> = all
        .iter()
        .filter(|s| !retired.iter().any(|r| r.line == s.line) && !s.down)
        .map(endpoint)
        .collect();
    let fix = match proxy::upstreams(&file.text, &change.retired_refs(), &[]) {
        Ok(_) => format!(
            "sed -i{} {}   # then reload the proxy on every node; left: {}",
            retired
                .iter()
                .map(|s| format!(" -e '{}d'", s.line))
                .collect::<String>(),
            file.path.display(),
            if kept.is_empty() {
                "no live servers".to_string()
            } else {
                kept.join(", ")
            }
        ),
        Err(e) => format!("{}: {e}", file.path.display()),
    };
    out.push(Check::fail(
        "proxy-upstream",
        format!(
            "{} still send{} traffic to retired {}: {}",
            live.iter().map(|s| at(s)).collect::<Vec<_>>().join(", "),
            if live.len() == 1 { "s" } else { "" },
            live.iter()
                .map(|s| endpoint(s))
                .collect::<Vec<_>>()
                .join(", "),
            live.iter()
                .map(|s| format!("`{}`", s.text))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(fix),
    ));
    out
}

/// How to apply a changed setting in `file` to the component that reads it.
fn restart(file: &ConfigFile, component: &str) -> String {
    let p = file.path.to_string_lossy();
    if p.contains("/manifests/") {
        "(the kubelet restarts the static pod)".to_string()
    } else if p.ends_with(".service") || p.ends_with(".conf") && p.contains(".service.d/") {
        format!("then systemctl daemon-reload && systemctl restart {component}")
    } else {
        format!("then restart {component}")
    }
}

/// The values of `key` in `old` and `new` that differ, with the line of the old one.
fn changed(old: &str, new: &str, key: &'static str) -> Vec<(usize, String, String)> {
    config::find(old, key)
        .into_iter()
        .zip(config::find(new, key))
        .filter(|(a, b)| a.value != b.value)
        .map(|(a, b)| (a.line, a.value, b.value))
        .collect()
}

fn retired_in(change: &Change, entries: &str, host_of: impl Fn(&str) -> String) -> Vec<String> {
    entries
        .split(',')
        .map(host_of)
        .filter(|h| !h.is_empty() && change.retire.iter().any(|r| same_host(r, h) || r == h))
        .collect()
}

/// kube-apiserver `--etcd-servers` listing retired members: the corrected value keeps every
/// other member and drops every retired one.
fn etcd_servers(file: &ConfigFile, change: &Change) -> Vec<Check> {
    let key = config::ETCD_SERVERS;
    match config::etcd_servers(&file.text, &change.retired_refs(), &[]) {
        Ok(None) => vec![],
        Ok(Some(new)) => changed(&file.text, &new, key)
            .into_iter()
            .map(|(line, old, value)| {
                let gone = retired_in(change, &old, |u| config::url_host(u).to_string());
                Check::fail(
                    "etcd-servers-flag",
                    format!(
                        "{}:{line}: kube-apiserver {key} lists retired member{} {}",
                        file.path.display(),
                        if gone.len() == 1 { "" } else { "s" },
                        gone.join(", ")
                    ),
                    Some(format!(
                        "set {key}={value} in {}, {}",
                        file.path.display(),
                        restart(file, "kube-apiserver")
                    )),
                )
            })
            .collect(),
        Err(e) => vec![Check::fail(
            "etcd-servers-flag",
            format!("{}: {e}", file.path.display()),
            Some("keep at least one etcd member: add the new members first".into()),
        )],
    }
}

/// etcd `--initial-cluster`/`ETCD_INITIAL_CLUSTER` naming retired members: read only when a
/// member's data directory is created, so a warning, with the corrected value.
fn initial_cluster(file: &ConfigFile, change: &Change) -> Vec<Check> {
    let mut out = Vec::new();
    match config::initial_cluster(&file.text, &change.retired_refs(), &[]) {
        Ok(None) => {}
        Ok(Some(new)) => {
            for key in config::INITIAL_CLUSTER {
                for (line, old, value) in changed(&file.text, &new, key) {
                    let gone: Vec<String> = old
                        .split(',')
                        .filter_map(|e| e.split_once('='))
                        .filter(|(n, u)| {
                            change
                                .retire
                                .iter()
                                .any(|r| r == n || same_host(r, config::url_host(u)))
                        })
                        .map(|(n, u)| format!("{n}={u}"))
                        .collect();
                    out.push(Check::warn(
                        "etcd-initial-cluster",
                        format!(
                            "{}:{line}: etcd {key} still lists retired {} (read when a member's data directory is created: a rebuilt member would look for it)",
                            file.path.display(),
                            gone.join(", ")
                        ),
                        Some(format!(
                            "set {key}={value} in {}, {}",
                            file.path.display(),
                            restart(file, "etcd")
                        )),
                    ));
                }
            }
        }
        Err(e) => out.push(Check::fail(
            "etcd-initial-cluster",
            format!("{}: {e}", file.path.display()),
            Some("keep at least one etcd member: add the new members first".into()),
        )),
    }
    out
}

pub fn files(inv: &Inventory, backup_dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    for f in inv
        .findings
        .iter()
        .filter(|f| f.code == crate::pki::FindingCode::KeyMismatch)
    {
        out.push(Check::fail(
            "key-pair",
            format!("{}: {}", f.path, f.message),
            Some("find the matching key, or reissue with --new-key".into()),
        ));
    }
    for k in inv
        .keys
        .iter()
        .filter(|k| k.info.format.is_private() && k.location.embedded.is_none())
    {
        if let Some(mode) = crate::sys::fs::mode(&k.location.path) {
            if mode & 0o004 != 0 {
                out.push(Check::fail(
                    "key-permissions",
                    format!(
                        "private key {} is world-readable (mode {mode:04o})",
                        k.location
                    ),
                    Some(format!("chmod 600 {}", k.location.path.display())),
                ));
            }
        }
    }
    out.push(match crate::sys::fs::probe_writable(backup_dir) {
        Ok((_, free)) if free < 10 * 1024 * 1024 => Check::fail(
            "backup-dir",
            format!("{} has only {} KiB free", backup_dir.display(), free / 1024),
            None,
        ),
        Ok((probed, free)) if probed == backup_dir => Check::pass(
            "backup-dir",
            format!(
                "{} is writable ({} MiB free)",
                backup_dir.display(),
                free / 1024 / 1024
            ),
        ),
        Ok((probed, free)) => Check::pass(
            "backup-dir",
            format!(
                "{} does not exist yet; {} where the rollout would create it is writable ({} MiB free)",
                backup_dir.display(),
                probed.display(),
                free / 1024 / 1024
            ),
        ),
        Err(e) => Check::fail(
            "backup-dir",
            format!("backups cannot be written to {}: {e}", backup_dir.display()),
            Some("pass --state-dir DIR on a writable file system".into()),
        ),
    });
    out
}

pub fn expiry(inv: &Inventory, change: &Change) -> Vec<Check> {
    let soon: Vec<&CertEntry> = inv
        .certificates
        .iter()
        .filter(|c| {
            c.info.not_after - change.now < change.window || c.status == CertStatus::Expired
        })
        .collect();
    if soon.is_empty() {
        return vec![Check::pass(
            "expiry",
            format!(
                "nothing expires within {}",
                crate::duration::short_human(change.window)
            ),
        )];
    }
    soon.iter()
        .map(|c| {
            let left = c.info.not_after - change.now;
            let when = if left < 0 {
                "expired".to_string()
            } else {
                format!("expires in {}", crate::duration::short_human(left))
            };
            Check::warn(
                "expiry",
                format!("{} {when}", path(c)),
                Some(format!(
                    "certs reissue {}   # in the same change",
                    c.location.path.display()
                )),
            )
        })
        .collect()
}
