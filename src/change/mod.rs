//! `certs change`: a VIP add, a VIP move, a master retirement or a new master, as one set of
//! edits to one node — which certificates lose or gain which SANs, which kubeconfigs move to
//! which server, which configuration lines name which masters. Pure: the node's inventory and
//! components in, [`Selection`] out; the CLI turns it into one bundle.
//!
//! Who is a master comes from the node: etcd's `--initial-cluster` (names and peer addresses),
//! the apiserver's `--etcd-servers`, and the node-local proxy's upstream lines.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::node::{Component, Runs};
use crate::pki::inventory::Inventory;
use crate::pki::Role;

/// What `certs change` cannot work with: an endpoint that is not `ADDR[:PORT]`, a master to
/// retire that the node does not name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("expected ADDR[:PORT] (an IP or a DNS name), found `{0}`")]
    Endpoint(String),
    #[error(
        "--retire {given}: expected a master this node names (etcd --initial-cluster, --etcd-servers, proxy upstreams: {}), found none called so",
        if .known.is_empty() { "none".to_string() } else { .known.join(", ") }
    )]
    UnknownMaster { given: String, known: Vec<String> },
}

/// `ADDR[:PORT]`, the port 6443 when not given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, Error> {
        let bad = || Error::Endpoint(text.to_string());
        let t = text.trim();
        if t.is_empty() || t.contains('/') || t.contains("://") {
            return Err(bad());
        }
        let (host, port) = if let Some(rest) = t.strip_prefix('[') {
            let (h, p) = rest.split_once(']').ok_or_else(bad)?;
            let port = match p.strip_prefix(':') {
                Some(p) => Some(p),
                None if p.is_empty() => None,
                None => return Err(bad()),
            };
            (h.to_string(), port)
        } else if t.matches(':').count() > 1 {
            (t.to_string(), None)
        } else {
            match t.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (t.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?,
            None => 6443,
        };
        let valid = host.parse::<std::net::IpAddr>().is_ok()
            || (!host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                }));
        if !valid {
            return Err(bad());
        }
        Ok(Endpoint { host, port })
    }

    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }

    /// The SAN that names it: `IP:…` or `DNS:…`.
    pub fn san(&self) -> String {
        if self.host.parse::<std::net::IpAddr>().is_ok() {
            format!("IP:{}", self.host)
        } else {
            format!("DNS:{}", self.host)
        }
    }
}

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub vip: Option<Endpoint>,
    pub old_vip: Option<Endpoint>,
    /// As given: member names, node names or addresses.
    pub retire: Vec<String>,
    /// `NAME=ADDR`.
    pub add_master: Vec<(String, String)>,
    /// Extra SAN edits of the apiserver serving certificates.
    pub add_san: Vec<String>,
    pub drop_san: Vec<String>,
}

/// A master as the node's files name it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Master {
    /// etcd member name (`etcd1`, `etcd-192.168.1.2`), when `--initial-cluster` gives one.
    pub names: Vec<String>,
    pub addr: String,
}

/// The masters the node's configuration names, in the order first seen.
pub fn masters(node: &[Component], proxies: &[(PathBuf, String)]) -> Vec<Master> {
    let mut out: Vec<Master> = Vec::new();
    let mut add = |name: Option<&str>, addr: &str| {
        let addr = addr
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        // The node's own local endpoint (a proxy's or apiserver's `127.0.0.1`) is no master;
        // other loopback addresses are (several members on one test machine, 127.0.0.11-13).
        if addr.is_empty() || matches!(addr.as_str(), "127.0.0.1" | "localhost" | "::1") {
            return;
        }
        match out.iter_mut().find(|m| m.addr == addr) {
            Some(m) => {
                if let Some(n) = name {
                    if !m.names.iter().any(|x| x == n) {
                        m.names.push(n.to_string());
                    }
                }
            }
            None => out.push(Master {
                names: name.map(|n| vec![n.to_string()]).unwrap_or_default(),
                addr,
            }),
        }
    };
    for c in node {
        if let Some(v) = c.get("initial-cluster") {
            for part in v.split(',') {
                if let Some((name, url)) = part.split_once('=') {
                    if let Some(h) = crate::endpoint::url_host(url.trim()) {
                        add(Some(name.trim()), &h);
                    }
                }
            }
        }
        if let Some(v) = c.get("etcd-servers") {
            for url in v.split(',') {
                if let Some(h) = crate::endpoint::url_host(url.trim()) {
                    add(None, &h);
                }
            }
        }
    }
    for (_, text) in proxies {
        for line in text.lines().map(str::trim) {
            // nginx `server 10.0.0.1:6443 …;`, haproxy `server m1 10.0.0.1:6443 …`
            let Some(rest) = line.strip_prefix("server ") else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            let hostport = words.iter().map(|w| w.trim_end_matches(';')).find(|w| {
                w.contains(':')
                    && w.rsplit(':')
                        .next()
                        .is_some_and(|p| p.parse::<u16>().is_ok())
            });
            if let Some(hp) = hostport {
                if let Some((h, _)) = hp.rsplit_once(':') {
                    add(None, h);
                }
            }
        }
    }
    out
}

/// A master to retire, resolved to its names and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    pub given: String,
    pub names: Vec<String>,
    pub addrs: Vec<String>,
}

impl Retired {
    /// SAN strings (`IP:…`, `DNS:…`) that designate it.
    pub fn sans(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for a in &self.addrs {
            if a.parse::<std::net::IpAddr>().is_ok() {
                out.insert(format!("IP:{a}"));
            } else {
                out.insert(format!("DNS:{a}"));
            }
        }
        for n in &self.names {
            out.insert(format!("DNS:{n}"));
        }
        out
    }

    pub fn is(&self, host_or_name: &str) -> bool {
        self.addrs
            .iter()
            .chain(&self.names)
            .any(|x| x == host_or_name)
    }
}

/// Resolves each `--retire` to a known master (by member name, node name or address).
/// Unknown ones are an error naming the masters the node knows.
pub fn resolve_retired(retire: &[String], masters: &[Master]) -> Result<Vec<Retired>, Error> {
    let mut out = Vec::new();
    for r in retire {
        let m = masters.iter().find(|m| {
            m.addr == *r
                || m.names.iter().any(|n| {
                    n == r
                        // kubeasz names members `etcd-<addr>`, kubespray `etcd1` for node1.
                        || n.strip_prefix("etcd-") == Some(r.as_str())
                })
        });
        match m {
            Some(m) => out.push(Retired {
                given: r.clone(),
                names: m.names.clone(),
                addrs: vec![m.addr.clone()],
            }),
            // An address the node names nowhere may still be in certificates.
            None if r.parse::<std::net::IpAddr>().is_ok() => out.push(Retired {
                given: r.clone(),
                names: vec![],
                addrs: vec![r.clone()],
            }),
            None => {
                let known: Vec<String> = masters
                    .iter()
                    .map(|m| {
                        if m.names.is_empty() {
                            m.addr.clone()
                        } else {
                            format!("{} ({})", m.names.join("/"), m.addr)
                        }
                    })
                    .collect();
                return Err(Error::UnknownMaster {
                    given: r.clone(),
                    known,
                });
            }
        }
    }
    Ok(out)
}

/// How one certificate file changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEdit {
    /// Index into `Inventory::certificates`.
    pub cert: usize,
    pub add: Vec<String>,
    pub drop: Vec<String>,
    /// Why, for the summary.
    pub why: Vec<String>,
}

fn san_strings(inv: &Inventory, i: usize) -> BTreeSet<String> {
    crate::rollout::resolve::sans_of(&inv.certificates[i].info)
        .into_iter()
        .collect()
}

/// Which certificate files gain or lose which SANs.
pub fn cert_edits(
    inv: &Inventory,
    req: &Request,
    retired: &[Retired],
    masters: &[Master],
) -> Vec<CertEdit> {
    let mut out = Vec::new();
    let master_addrs: BTreeSet<String> = masters
        .iter()
        .map(|m| {
            Endpoint {
                host: m.addr.clone(),
                port: 0,
            }
            .san()
        })
        .collect();
    let master_names: BTreeSet<String> = masters
        .iter()
        .flat_map(|m| m.names.iter().map(|n| format!("DNS:{n}")))
        .collect();
    for (i, c) in inv.certificates.iter().enumerate() {
        if c.location.embedded.is_some() || c.role.is_ca() || c.info.is_ca {
            continue;
        }
        let have = san_strings(inv, i);
        let mut add: Vec<String> = Vec::new();
        let mut drop: Vec<String> = Vec::new();
        let mut why: Vec<String> = Vec::new();
        let push = |v: &mut Vec<String>, s: String| {
            if !v.contains(&s) {
                v.push(s);
            }
        };
        if c.role == Role::Apiserver {
            if let Some(vip) = &req.vip {
                if !have.contains(&vip.san()) {
                    push(&mut add, vip.san());
                    why.push(format!("the VIP {}", vip.host));
                }
            }
            for s in &req.add_san {
                let s = normalise(s);
                if !have.contains(&s) {
                    push(&mut add, s);
                    why.push("--add-san".into());
                }
            }
            for s in &req.drop_san {
                let s = normalise(s);
                if have.contains(&s) {
                    push(&mut drop, s);
                    why.push("--drop-san".into());
                }
            }
        }
        for r in retired {
            for s in r.sans() {
                if have.contains(&s) && !drop.contains(&s) {
                    push(&mut drop, s);
                    why.push(format!("retired {}", r.given));
                }
            }
        }
        // A certificate shared by the masters (it names two or more of them) names a new one too.
        let shared_addrs = have.intersection(&master_addrs).count() >= 2;
        let shared_names = have.intersection(&master_names).count() >= 2;
        for (name, addr) in &req.add_master {
            let e = Endpoint {
                host: addr.clone(),
                port: 0,
            };
            if shared_addrs && !have.contains(&e.san()) {
                push(&mut add, e.san());
                why.push(format!("new master {name}"));
            }
            let dns = format!("DNS:{name}");
            // Or it names two or more hosts of the new one's family (node1, node2 → node4).
            let family = name.trim_end_matches(|c: char| c.is_ascii_digit());
            let siblings = family.len() < name.len()
                && have
                    .iter()
                    .filter_map(|s| s.strip_prefix("DNS:"))
                    .filter(|d| {
                        d.strip_prefix(family)
                            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                    })
                    .count()
                    >= 2;
            if (shared_names || siblings) && !have.contains(&dns) {
                push(&mut add, dns);
                why.push(format!("new master {name}"));
            }
        }
        why.dedup();
        if !add.is_empty() || !drop.is_empty() {
            out.push(CertEdit {
                cert: i,
                add,
                drop,
                why,
            });
        }
    }
    out
}

/// `10.0.0.1` → `IP:10.0.0.1`, `lb.example` → `DNS:lb.example`; already typed ones kept.
fn normalise(s: &str) -> String {
    if s.contains(':') && (s.starts_with("IP:") || s.starts_with("DNS:")) {
        s.to_string()
    } else if s.parse::<std::net::IpAddr>().is_ok() {
        format!("IP:{s}")
    } else {
        format!("DNS:{s}")
    }
}

/// One kubeconfig cluster to point elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMove {
    pub path: PathBuf,
    pub cluster: String,
    pub from: String,
    pub to: String,
    pub why: String,
}

fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host = crate::endpoint::url_host(url)?;
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(443);
    Some((host, port))
}

/// Which kubeconfig clusters move, and where: those on the old VIP to the new one; on a VIP add,
/// those pointing at a master (the control-plane endpoint) to the VIP, except the ones the
/// controller-manager and scheduler read (they stay on their local apiserver); those on a
/// retired master to the VIP or a kept master.
pub fn server_moves(
    inv: &Inventory,
    node: &[Component],
    req: &Request,
    retired: &[Retired],
    masters: &[Master],
) -> Vec<ServerMove> {
    let local_only: Vec<&PathBuf> = node
        .iter()
        .filter(|c| {
            matches!(
                c.kind.as_str(),
                "kube-controller-manager" | "kube-scheduler"
            )
        })
        .flat_map(|c| c.files.iter())
        .collect();
    let advertise: Option<String> = node
        .iter()
        .filter(|c| c.kind == "kube-apiserver")
        .find_map(|c| c.get("advertise-address").or(c.get("bind-address")))
        .map(str::to_string);
    let kept: Option<String> = advertise
        .clone()
        .filter(|a| !retired.iter().any(|r| r.is(a)))
        .or_else(|| {
            masters
                .iter()
                .find(|m| !retired.iter().any(|r| r.is(&m.addr)))
                .map(|m| m.addr.clone())
        });
    let mut out = Vec::new();
    for kc in &inv.kubeconfigs {
        for cl in &kc.config.clusters {
            let Some((host, port)) = host_port(&cl.server) else {
                continue;
            };
            let mv = |to: String, why: String| ServerMove {
                path: kc.path.clone(),
                cluster: cl.name.clone(),
                from: cl.server.clone(),
                to,
                why,
            };
            if let (Some(old), Some(vip)) = (&req.old_vip, &req.vip) {
                if old.host == host && old.port == port {
                    out.push(mv(
                        vip.url(),
                        format!("on the old VIP {}:{}", old.host, old.port),
                    ));
                    continue;
                }
            }
            if let Some(r) = retired.iter().find(|r| r.is(&host)) {
                let to = match (&req.vip, &kept) {
                    (Some(vip), _) => vip.url(),
                    (None, Some(k)) => Endpoint {
                        host: k.clone(),
                        port,
                    }
                    .url(),
                    (None, None) => continue,
                };
                out.push(mv(to, format!("on retired {}", r.given)));
                continue;
            }
            if let (Some(vip), None) = (&req.vip, &req.old_vip) {
                let on_master = masters.iter().any(|m| m.addr == host)
                    || advertise.as_deref() == Some(host.as_str());
                let stays = local_only.iter().any(|p| **p == kc.path);
                if on_master && !stays && !(vip.host == host && vip.port == port) {
                    out.push(mv(vip.url(), "on a master, not the VIP".into()));
                }
            }
        }
    }
    out
}

/// Whether a component runs as a static pod (its manifest is the file to edit).
pub fn is_static_pod(c: &Component) -> bool {
    matches!(c.runs, Runs::StaticPod(_))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read fixtures with std::fs
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("192.168.1.40:8443").unwrap(),
            Endpoint {
                host: "192.168.1.40".into(),
                port: 8443
            }
        );
        assert_eq!(Endpoint::parse("10.0.0.9").unwrap().port, 6443);
        assert_eq!(
            Endpoint::parse("lb.example.com").unwrap().san(),
            "DNS:lb.example.com"
        );
        assert_eq!(
            Endpoint::parse("[::1]:6443").unwrap().url(),
            "https://[::1]:6443"
        );
        for bad in [
            "",
            "https://10.0.0.1",
            "10.0.0.1:99999",
            "10.0.0.1:x",
            "a b",
            "10.0.0.1/24",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retire_by_name_or_address() {
        let masters = vec![
            Master {
                names: vec!["etcd1".into()],
                addr: "10.0.0.1".into(),
            },
            Master {
                names: vec!["etcd-10.0.0.2".into()],
                addr: "10.0.0.2".into(),
            },
        ];
        let r = resolve_retired(&["etcd1".into(), "10.0.0.2".into()], &masters).unwrap();
        assert_eq!(r[0].addrs, ["10.0.0.1"]);
        assert_eq!(r[1].names, ["etcd-10.0.0.2"]);
        let r = resolve_retired(&["10.0.0.2".into()], &masters).unwrap();
        assert!(r[0].sans().contains("DNS:etcd-10.0.0.2"));
        let err = resolve_retired(&["node9".into()], &masters)
            .unwrap_err()
            .to_string();
        assert!(err.contains("etcd1 (10.0.0.1)"), "{err}");
        // An address the files do not name may still be in certificates.
        assert!(resolve_retired(&["10.9.9.9".into()], &masters).is_ok());
    }

    fn read(layout: &str) -> (std::path::PathBuf, Inventory, Vec<Component>) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(layout);
        let mut paths: Vec<PathBuf> = Vec::new();
        for p in ["etc/kubernetes", "etc/ssl/etcd/ssl", "root/.kube/config"] {
            if crate::sys::fs::exists(&root.join(p)) {
                paths.push(root.join(p));
            }
        }
        let inv = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
            paths: &paths,
            root: &root,
            now: 1_800_000_000,
            warn_within: 0,
        })
        .unwrap();
        let node = crate::sys::node::read(&root);
        (root, inv, node)
    }

    fn name(inv: &Inventory, e: &CertEdit) -> String {
        inv.certificates[e.cert]
            .location
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn kubeadm_vip_add_moves_the_control_plane_endpoint_kubeconfigs() {
        let (_, inv, node) = read("kubeadm");
        let req = Request {
            vip: Some(Endpoint::parse("10.21.22.100").unwrap()),
            ..Request::default()
        };
        let masters = masters(&node, &[]);
        let edits = cert_edits(&inv, &req, &[], &masters);
        assert_eq!(edits.len(), 1);
        assert_eq!(name(&inv, &edits[0]), "apiserver.crt");
        assert_eq!(edits[0].add, ["IP:10.21.22.100"]);
        let mut moved: Vec<String> = server_moves(&inv, &node, &req, &[], &masters)
            .iter()
            .map(|m| {
                assert_eq!(m.to, "https://10.21.22.100:6443");
                m.path.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        moved.sort();
        assert_eq!(moved, ["admin.conf", "kubelet.conf", "super-admin.conf"]);
    }

    #[test]
    fn binary_retirement_drops_the_retired_masters_from_every_certificate() {
        let (_, inv, node) = read("binary");
        let lb = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/binary/etc/kube-lb/conf/kube-lb.conf"),
        )
        .unwrap();
        let masters = masters(&node, &[("kube-lb.conf".into(), lb)]);
        let addrs: Vec<&str> = masters.iter().map(|m| m.addr.as_str()).collect();
        assert_eq!(addrs, ["172.72.0.95", "172.72.0.96", "172.72.0.97"]);
        assert_eq!(masters[1].names, ["etcd2"]);
        let retired = resolve_retired(&["etcd2".into(), "172.72.0.97".into()], &masters).unwrap();
        let req = Request {
            retire: vec!["etcd2".into(), "172.72.0.97".into()],
            ..Request::default()
        };
        let edits = cert_edits(&inv, &req, &retired, &masters);
        let mut names: Vec<String> = edits.iter().map(|e| name(&inv, e)).collect();
        names.sort();
        assert!(names.contains(&"kubernetes.pem".to_string()), "{names:?}");
        assert!(names.contains(&"etcd.pem".to_string()), "{names:?}");
        for e in &edits {
            assert!(e.add.is_empty());
            assert!(e
                .drop
                .iter()
                .all(|s| s == "IP:172.72.0.96" || s == "IP:172.72.0.97"));
        }
        // A new master joins the shared certificates.
        let req = Request {
            add_master: vec![("master4".into(), "172.72.0.98".into())],
            ..Request::default()
        };
        let edits = cert_edits(&inv, &req, &[], &masters);
        assert!(edits
            .iter()
            .any(|e| name(&inv, e) == "etcd.pem" && e.add == ["IP:172.72.0.98"]));
    }

    #[test]
    fn kubeasz_vip_move_keeps_the_port() {
        let (_, inv, node) = read("kubeasz-ecdsa");
        let req = Request {
            vip: Some(Endpoint::parse("192.168.1.40:8443").unwrap()),
            old_vip: Some(Endpoint::parse("192.168.1.39:8443").unwrap()),
            ..Request::default()
        };
        let masters = masters(&node, &[]);
        let moves = server_moves(&inv, &node, &req, &[], &masters);
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert!(moves[0].path.ends_with("root/.kube/config"));
        assert_eq!(moves[0].to, "https://192.168.1.40:8443");
        let edits = cert_edits(&inv, &req, &[], &masters);
        assert_eq!(edits.len(), 1);
        assert_eq!(name(&inv, &edits[0]), "kubernetes.pem");
        assert_eq!(edits[0].add, ["IP:192.168.1.40"]);
    }
}
