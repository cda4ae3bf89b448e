//! Which addresses a master's name stands for, as the node's own files say: etcd's
//! `--initial-cluster`/`ETCD_INITIAL_CLUSTER` (`etcd2=https://172.72.0.96:2380`), etcd's own
//! `--name` with its advertised peer URL, the kubelet's `system:node:NAME` identity with the
//! apiserver's `--advertise-address`, and `/etc/hosts` (where kubespray writes its inventory).
//! `--retire NAME` and `--keep NAME` are matched through these, so `--retire etcd2` finds the
//! `--etcd-servers` URL and the proxy line of 172.72.0.96.

use std::net::IpAddr;

use super::Check;
use crate::edit::config::{same_host, url_host};
use crate::node::Component;
use crate::pki::inventory::Inventory;

/// One name the node ties to an address, with where it says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub address: String,
    pub from: String,
}

fn is_ip(s: &str) -> bool {
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

/// Every name-to-address tie in the node's components, kubeconfigs and `/etc/hosts` text.
pub fn aliases(
    components: &[Component],
    inv: &Inventory,
    hosts: Option<(&str, &str)>,
) -> Vec<Alias> {
    let mut out: Vec<Alias> = Vec::new();
    let mut push = |name: &str, address: &str, from: String| {
        let a = Alias {
            name: name.to_string(),
            address: address.to_string(),
            from,
        };
        if !name.is_empty()
            && is_ip(address)
            && !out
                .iter()
                .any(|o| o.name == a.name && o.address == a.address)
        {
            out.push(a);
        }
    };
    for c in components.iter().filter(|c| c.kind == "etcd") {
        if let Some(v) = c.get("initial-cluster") {
            for (name, url) in v.split(',').filter_map(|e| e.split_once('=')) {
                push(name, url_host(url), c.origin("initial-cluster"));
            }
        }
        if let (Some(name), Some(peer)) = (c.get("name"), c.get("initial-advertise-peer-urls")) {
            for url in peer.split(',') {
                push(name, url_host(url), c.origin("name"));
            }
        }
    }
    // This node's name (its kubelet identity) and the address its apiserver advertises.
    let advertised = components
        .iter()
        .find(|c| c.kind == "kube-apiserver")
        .and_then(|c| {
            c.get("advertise-address")
                .map(|a| (a, c.origin("advertise-address")))
        });
    if let Some((address, origin)) = advertised {
        for kc in &inv.kubeconfigs {
            for u in &kc.config.users {
                if let Some(name) = u.name.strip_prefix("system:node:") {
                    push(
                        name,
                        address,
                        format!("{} user {}, {origin}", kc.path.display(), u.name),
                    );
                }
            }
        }
    }
    if let Some((path, text)) = hosts {
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(addr) = words.next() else { continue };
            let Ok(ip) = addr.parse::<IpAddr>() else {
                continue;
            };
            if ip.is_loopback()
                || ip.is_multicast()
                || ip.is_unspecified()
                || addr.starts_with("fe00")
                || addr.starts_with("ff0")
            {
                continue;
            }
            for name in words {
                push(name, addr, format!("{path}:{}", n + 1));
            }
        }
    }
    out
}

/// `who` and everything the node ties it to: a name's addresses and those addresses' other
/// names; an address's names. The first entry is `who` itself.
pub fn expand(who: &str, aliases: &[Alias]) -> Vec<String> {
    let mut out = vec![who.to_string()];
    let addresses: Vec<&str> = if is_ip(who) {
        vec![who]
    } else {
        aliases
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case(who))
            .map(|a| a.address.as_str())
            .collect()
    };
    for addr in &addresses {
        if !out.iter().any(|o| same_host(o, addr)) {
            out.push(addr.to_string());
        }
    }
    for a in aliases {
        if addresses.iter().any(|addr| same_host(&a.address, addr))
            && !out.iter().any(|o| o.eq_ignore_ascii_case(&a.name))
        {
            out.push(a.name.clone());
        }
    }
    out
}

/// What `--retire`/`--keep` (`flag`) resolved to, one check per argument: a pass naming the
/// ties and their files, a warning for a name no file ties to an address.
pub fn report(flag: &str, given: &[String], aliases: &[Alias]) -> Vec<Check> {
    let mut out = Vec::new();
    for who in given {
        let all = expand(who, aliases);
        let ties: Vec<String> = aliases
            .iter()
            .filter(|a| {
                all.iter().any(|w| w.eq_ignore_ascii_case(&a.name))
                    && all.iter().any(|w| same_host(w, &a.address))
            })
            .map(|a| format!("{}={} ({})", a.name, a.address, a.from))
            .collect();
        if !ties.is_empty() {
            out.push(Check::pass(
                "member-names",
                format!(
                    "{flag} {who} is {}: {}",
                    all[1..].join(", "),
                    ties.join("; ")
                ),
            ));
        } else if !is_ip(who) {
            out.push(Check::warn(
                "member-names",
                format!("{flag} {who}: no file on this node ties that name to an address (etcd --initial-cluster, kubelet identity, /etc/hosts); only places that spell the name itself are checked"),
                Some(format!("pass the address: {flag} ADDR")),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_and_expansion_both_ways() {
        let hosts = "127.0.0.1 localhost\n::1 localhost ip6-localhost\nff02::1 ip6-allnodes\n# Ansible inventory hosts BEGIN\n10.6.0.11 node1.cluster.local node1\n10.6.0.12 node2.cluster.local node2 # second\n";
        let inv = Inventory::build(
            vec![],
            &crate::pki::inventory::Options {
                now: 0,
                warn_within: 0,
                root: std::path::Path::new("/"),
            },
            &crate::sys::fs::read_entry,
        );
        let a = aliases(&[], &inv, Some(("/etc/hosts", hosts)));
        assert_eq!(a.len(), 4, "{a:?}");
        assert_eq!(a[3].from, "/etc/hosts:6");
        assert_eq!(
            expand("node2", &a),
            ["node2", "10.6.0.12", "node2.cluster.local"]
        );
        assert_eq!(
            expand("10.6.0.11", &a),
            ["10.6.0.11", "node1.cluster.local", "node1"]
        );
        assert_eq!(expand("localhost", &a), ["localhost"]);
        let r = report(
            "--retire",
            &["node2".into(), "ghost".into(), "10.9.9.9".into()],
            &a,
        );
        assert_eq!(r.len(), 2);
        assert!(
            r[0].message
                .starts_with("--retire node2 is 10.6.0.12, node2.cluster.local: "),
            "{}",
            r[0].message
        );
        assert_eq!(r[1].status, super::super::Status::Warn);
    }
}
