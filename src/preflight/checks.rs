//! Checks on what is on disk: the CAs, certificate coverage of a VIP and of the kept members,
//! stale names of retired ones, clients and proxies that still point at them, key files, expiry.

use std::path::Path;

use super::{Check, ConfigFile};
use crate::pki::inventory::{CertEntry, Inventory, Status as CertStatus};
use crate::pki::Role;
use crate::spec::San;

/// What the operator is about to do.
pub struct Change<'a> {
    pub vip: Option<&'a str>,
    pub retire: &'a [String],
    pub keep: &'a [String],
    /// Seconds: expiring within this is reported so it can be reissued in the same change.
    pub window: i64,
    pub now: i64,
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
        let missing: Vec<&String> = change.keep.iter().filter(|k| !covers(c, k)).collect();
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
        } else if !change.keep.is_empty() {
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
        let left: Vec<&String> = members
            .iter()
            .filter(|m| !change.retire.contains(m))
            .collect();
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

/// Kubeconfigs, node-local proxies and apiserver `--etcd-servers` that still name retired
/// masters, or that bypass a new VIP.
pub fn clients(inv: &Inventory, configs: &[ConfigFile], change: &Change) -> Vec<Check> {
    let mut out = Vec::new();
    for kc in &inv.kubeconfigs {
        for cl in &kc.config.clusters {
            let host = super::etcd::url_host(&cl.server).unwrap_or_default();
            if change.retire.contains(&host) {
                let server = change
                    .vip
                    .map_or("https://<a kept master or the VIP>:6443".to_string(), |v| {
                        format!("https://{v}:6443")
                    });
                out.push(Check::fail(
                    "kubeconfig-retired",
                    format!(
                        "{} (cluster {}) points at retired {}",
                        kc.path.display(),
                        cl.name,
                        cl.server
                    ),
                    Some(format!(
                        "kubectl --kubeconfig {} config set-cluster {} --server={server}",
                        kc.path.display(),
                        cl.name
                    )),
                ));
            } else if let Some(vip) = change.vip {
                let local = host == "127.0.0.1" || host == "localhost";
                if host != vip && !local {
                    out.push(Check::warn(
                        "kubeconfig-vip",
                        format!("{} (cluster {}) points at {} rather than the VIP {vip}", kc.path.display(), cl.name, cl.server),
                        Some(format!("kubectl --kubeconfig {} config set-cluster {} --server=https://{vip}:6443", kc.path.display(), cl.name)),
                    ));
                }
            }
        }
    }
    for file in configs {
        for (n, line) in file.text.lines().enumerate() {
            let trimmed = line.trim();
            let where_ = format!("{}:{}", file.path.display(), n + 1);
            // nginx stream `server 10.0.0.1:6443;`, haproxy `server m1 10.0.0.1:6443 check`.
            let upstream = trimmed.starts_with("server ") && trimmed.contains(':');
            if upstream {
                if let Some(r) = change.retire.iter().find(|r| names(trimmed, r)) {
                    out.push(Check::fail(
                        "proxy-upstream",
                        format!("{where_} still sends traffic to retired {r}: `{trimmed}`"),
                        Some(format!(
                            "remove that line from {} and reload the proxy on every node",
                            file.path.display()
                        )),
                    ));
                }
            }
            if let Some(pos) = line.find("--etcd-servers=") {
                let value = line[pos + "--etcd-servers=".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .trim_end_matches(['\\', '"']);
                let listed: Vec<&str> = value.split(',').collect();
                if let Some(r) = change.retire.iter().find(|r| {
                    listed
                        .iter()
                        .any(|u| super::etcd::url_host(u).as_deref() == Some(r.as_str()))
                }) {
                    let kept: Vec<&str> = listed
                        .iter()
                        .copied()
                        .filter(|u| super::etcd::url_host(u).as_deref() != Some(r.as_str()))
                        .collect();
                    out.push(Check::fail(
                        "etcd-servers-flag",
                        format!("{where_}: kube-apiserver --etcd-servers lists retired member {r}"),
                        Some(format!(
                            "set --etcd-servers={} and restart kube-apiserver",
                            kept.join(",")
                        )),
                    ));
                }
            }
        }
    }
    out
}

/// `text` names `who` as a whole address (not 10.0.0.1 inside 10.0.0.10).
fn names(text: &str, who: &str) -> bool {
    text.match_indices(who).any(|(i, _)| {
        let before = text[..i].chars().last();
        let after = text[i + who.len()..].chars().next();
        let boundary = |c: Option<char>| {
            c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        };
        boundary(before) && boundary(after)
    })
}

pub fn files(inv: &Inventory, backup_dir: &Path) -> Vec<Check> {
    let mut out = Vec::new();
    for f in inv.findings.iter().filter(|f| f.code == "key-mismatch") {
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
