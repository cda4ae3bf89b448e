//! Ansible inventories as kubespray, kubean and kubeasz write them, INI or YAML, read as they
//! are: hosts with their variables, groups with their children resolved. Pure: text in.
//!
//! kubespray and kubean name the groups `kube_control_plane` (formerly `kube-master`), `etcd`
//! and `kube_node`; kubeasz names them `kube_master`, `etcd` and `kube_node`.

use super::Error;
use std::collections::BTreeMap;

use serde_yaml_ng::Value;

/// One host of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Host {
    pub name: String,
    /// Its variables, as text (`ip`, `access_ip`, `ansible_host`, `etcd_member_name`, …).
    pub vars: BTreeMap<String, String>,
}

impl Host {
    /// The address the cluster knows it by: kubespray's `ip`, then `access_ip`, then
    /// `ansible_host`, then the host name itself when it is an IP (kubeasz lists hosts by IP).
    pub fn addr(&self) -> Option<String> {
        ["ip", "access_ip", "ansible_host"]
            .iter()
            .find_map(|k| self.vars.get(*k).filter(|v| !v.is_empty()).cloned())
            .or_else(|| {
                self.name
                    .parse::<std::net::IpAddr>()
                    .is_ok()
                    .then(|| self.name.clone())
            })
    }

    /// Every name it may be given: the host name, its addresses, its etcd member name and
    /// kubeasz's node name.
    pub fn aliases(&self) -> Vec<String> {
        let mut out = vec![self.name.clone()];
        for k in [
            "ip",
            "access_ip",
            "ansible_host",
            "etcd_member_name",
            "NODE_NAME",
            "k8s_nodename",
        ] {
            if let Some(v) = self.vars.get(k).filter(|v| !v.is_empty()) {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }
}

/// An inventory: hosts in the order first seen, and each group's hosts (children included),
/// in that order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inventory {
    pub hosts: Vec<Host>,
    pub groups: BTreeMap<String, Vec<String>>,
}

/// Which installer's group names the inventory uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// kubespray and kubean: `kube_control_plane` (or the older `kube-master`), `etcd`, `kube_node`.
    Kubespray,
    /// kubeasz: `kube_master`, `etcd`, `kube_node`.
    Kubeasz,
}

/// The cluster's roles, from the groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub flavour: Flavour,
    pub control_plane: Vec<String>,
    pub etcd: Vec<String>,
    /// Every `kube_node` host (control-plane hosts that also run workloads included).
    pub nodes: Vec<String>,
}

impl Inventory {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn group(&self, name: &str) -> &[String] {
        self.groups.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The control-plane, etcd and node groups, whichever installer wrote the inventory.
    pub fn layout(&self) -> Result<Layout, Error> {
        let (flavour, cp) = if !self.group("kube_control_plane").is_empty() {
            (Flavour::Kubespray, "kube_control_plane")
        } else if !self.group("kube-master").is_empty() {
            (Flavour::Kubespray, "kube-master")
        } else if !self.group("kube_master").is_empty() {
            (Flavour::Kubeasz, "kube_master")
        } else {
            return Err(Error::NoControlPlaneGroup {
                groups: self.groups.keys().cloned().collect(),
            });
        };
        let nodes = if self.group("kube_node").is_empty() {
            self.group("kube-node").to_vec()
        } else {
            self.group("kube_node").to_vec()
        };
        Ok(Layout {
            flavour,
            control_plane: self.group(cp).to_vec(),
            etcd: self.group("etcd").to_vec(),
            nodes,
        })
    }

    /// The host a name or address designates: its host name, `ip`, `access_ip`,
    /// `ansible_host`, etcd member name or kubeasz node name.
    pub fn find(&self, given: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == given).or_else(|| {
            self.hosts
                .iter()
                .find(|h| h.aliases().iter().any(|a| a == given))
        })
    }
}

/// Reads an inventory, YAML when it parses as a YAML mapping with `all` or groups of `hosts` /
/// `children`, INI otherwise.
pub fn parse(text: &str) -> Result<Inventory, Error> {
    let looks_yaml = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && l != &"---")
        .is_some_and(|l| !l.starts_with('[') && l.ends_with(':'));
    if looks_yaml {
        parse_yaml(text)
    } else {
        parse_ini(text)
    }
}

/// `a=1 b="two words" c='x'`: the variables of an INI host line (quotes removed).
fn ini_vars(rest: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() || chars.peek() == Some(&'#') {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(Error::Inventory(format!(
                "expected KEY=VALUE, found `{key}`"
            )));
        }
        let mut value = String::new();
        match chars.peek().copied() {
            Some(q @ ('"' | '\'')) => {
                chars.next();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == q {
                        closed = true;
                        break;
                    }
                    value.push(c);
                }
                if !closed {
                    return Err(Error::Inventory(format!("{key}: unterminated quote")));
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.insert(key, value);
    }
    Ok(out)
}

#[derive(Default)]
struct Raw {
    hosts: Vec<Host>,
    direct: BTreeMap<String, Vec<String>>,
    children: BTreeMap<String, Vec<String>>,
}

impl Raw {
    fn add_host(&mut self, name: &str, vars: BTreeMap<String, String>) {
        match self.hosts.iter_mut().find(|h| h.name == name) {
            Some(h) => h.vars.extend(vars),
            None => self.hosts.push(Host {
                name: name.to_string(),
                vars,
            }),
        }
    }

    fn member(&mut self, group: &str, host: &str) {
        let list = self.direct.entry(group.to_string()).or_default();
        if !list.iter().any(|h| h == host) {
            list.push(host.to_string());
        }
    }

    fn resolve(self) -> Result<Inventory, Error> {
        fn expand(
            g: &str,
            raw: &Raw,
            seen: &mut Vec<String>,
            out: &mut Vec<String>,
        ) -> Result<(), Error> {
            if seen.iter().any(|s| s == g) {
                return Err(Error::Inventory(format!(
                    "group {g} is its own child ({})",
                    seen.join(" -> ")
                )));
            }
            seen.push(g.to_string());
            for h in raw.direct.get(g).into_iter().flatten() {
                if !out.contains(h) {
                    out.push(h.clone());
                }
            }
            for c in raw.children.get(g).into_iter().flatten() {
                expand(c, raw, seen, out)?;
            }
            seen.pop();
            Ok(())
        }
        let mut names: Vec<String> = self.direct.keys().cloned().collect();
        names.extend(self.children.keys().cloned());
        names.extend(self.children.values().flatten().cloned());
        names.sort();
        names.dedup();
        let mut groups = BTreeMap::new();
        for g in names {
            let mut out = Vec::new();
            expand(&g, &self, &mut Vec::new(), &mut out)?;
            groups.insert(g, out);
        }
        groups.insert(
            "all".to_string(),
            self.hosts.iter().map(|h| h.name.clone()).collect(),
        );
        Ok(Inventory {
            hosts: self.hosts,
            groups,
        })
    }
}

fn parse_ini(text: &str) -> Result<Inventory, Error> {
    #[derive(PartialEq)]
    enum Section {
        Hosts(String),
        Children(String),
        Vars,
    }
    let mut raw = Raw::default();
    let mut section = Section::Hosts("ungrouped".into());
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let at = |e: String| Error::Inventory(format!("line {}: {e}", n + 1));
        if let Some(head) = line.strip_prefix('[') {
            let head = head
                .strip_suffix(']')
                .ok_or_else(|| at(format!("expected [GROUP], found `{line}`")))?;
            section = match head.split_once(':') {
                Some((g, "children")) => Section::Children(g.to_string()),
                Some((_, "vars")) => Section::Vars,
                Some((_, other)) => {
                    return Err(at(format!(
                        "expected [GROUP], [GROUP:children] or [GROUP:vars], found `:{other}`"
                    )))
                }
                None => Section::Hosts(head.to_string()),
            };
            if let Section::Hosts(g) | Section::Children(g) = &section {
                raw.direct.entry(g.clone()).or_default();
            }
            continue;
        }
        match &section {
            Section::Vars => {}
            Section::Children(g) => {
                let child = line.split_whitespace().next().unwrap_or_default();
                let list = raw.children.entry(g.clone()).or_default();
                if !list.iter().any(|c| c == child) {
                    list.push(child.to_string());
                }
            }
            Section::Hosts(g) => {
                let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
                if name.contains('[') {
                    return Err(at(format!(
                        "host ranges (`{name}`) are not read: list the hosts one per line"
                    )));
                }
                let vars = ini_vars(rest).map_err(|e| at(format!("host {name}: {e}")))?;
                raw.add_host(name, vars);
                let g = g.clone();
                raw.member(&g, name);
            }
        }
    }
    raw.resolve()
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_yaml(text: &str) -> Result<Inventory, Error> {
    let doc: Value =
        crate::pki::yaml::from_str(text).map_err(|e| Error::Inventory(format!("YAML: {e}")))?;
    let Value::Mapping(top) = doc else {
        return Err(Error::Inventory(
            "expected a YAML mapping of groups (all: {hosts, children})".into(),
        ));
    };
    let mut raw = Raw::default();
    fn group(name: &str, v: &Value, raw: &mut Raw, depth: usize) -> Result<(), Error> {
        if depth > 32 {
            return Err(Error::Inventory(format!("group {name}: nested too deep")));
        }
        raw.direct.entry(name.to_string()).or_default();
        let Value::Mapping(m) = v else {
            return Ok(()); // `group:` with nothing under it
        };
        if let Some(Value::Mapping(hosts)) = m.get("hosts") {
            for (h, vars) in hosts {
                let h = scalar(h).ok_or_else(|| {
                    Error::Inventory(format!("group {name}: a host name that is not text"))
                })?;
                let vars: BTreeMap<String, String> = match vars {
                    Value::Mapping(vm) => vm
                        .iter()
                        .filter_map(|(k, v)| Some((scalar(k)?, scalar(v)?)))
                        .collect(),
                    _ => BTreeMap::new(),
                };
                raw.add_host(&h, vars);
                raw.member(name, &h);
            }
        }
        if let Some(Value::Mapping(children)) = m.get("children") {
            for (c, cv) in children {
                let c = scalar(c).ok_or_else(|| {
                    Error::Inventory(format!("group {name}: a child that is not text"))
                })?;
                let list = raw.children.entry(name.to_string()).or_default();
                if !list.contains(&c) {
                    list.push(c.clone());
                }
                group(&c, cv, raw, depth + 1)?;
            }
        }
        Ok(())
    }
    for (k, v) in &top {
        let k =
            scalar(k).ok_or_else(|| Error::Inventory("a group name that is not text".into()))?;
        group(&k, v, &mut raw, 0)?;
    }
    // `all` is implicit: its own hosts and children are the inventory's.
    raw.direct.remove("all");
    raw.children.remove("all");
    raw.resolve()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubespray_ini() {
        let inv = parse(
            "# kubespray sample\n[all]\nnode1 ansible_host=95.54.0.12 ip=10.3.0.1 etcd_member_name=etcd1\nnode2 ansible_host=95.54.0.13  ip=10.3.0.2 etcd_member_name=etcd2\nnode3 ip=10.3.0.3 etcd_member_name=\"etcd3\"\nnode4 ip=10.3.0.4\n\n[kube_control_plane]\nnode1\nnode2\nnode3\n\n[etcd]\nnode1\nnode2\nnode3\n\n[kube_node]\nnode2\nnode3\nnode4\n\n[calico_rr]\n\n[k8s_cluster:children]\nkube_control_plane\nkube_node\ncalico_rr\n\n[all:vars]\nansible_user=root\n",
        )
        .unwrap();
        let l = inv.layout().unwrap();
        assert_eq!(l.flavour, Flavour::Kubespray);
        assert_eq!(l.control_plane, ["node1", "node2", "node3"]);
        assert_eq!(l.etcd, ["node1", "node2", "node3"]);
        assert_eq!(l.nodes, ["node2", "node3", "node4"]);
        assert_eq!(
            inv.host("node1").unwrap().addr().as_deref(),
            Some("10.3.0.1")
        );
        assert_eq!(inv.find("etcd3").unwrap().name, "node3");
        assert_eq!(inv.find("10.3.0.2").unwrap().name, "node2");
        assert_eq!(
            inv.group("k8s_cluster"),
            ["node1", "node2", "node3", "node4"]
        );
    }

    #[test]
    fn kubespray_yaml() {
        let inv = parse(
            "all:\n  hosts:\n    node1:\n      ansible_host: 10.6.0.11\n      ip: 10.6.0.11\n    node2:\n      ansible_host: 10.6.0.12\n  children:\n    kube_control_plane:\n      hosts:\n        node1:\n        node2:\n    kube_node:\n      hosts:\n        node2:\n    etcd:\n      hosts:\n        node1:\n    k8s_cluster:\n      children:\n        kube_control_plane:\n        kube_node:\n",
        )
        .unwrap();
        let l = inv.layout().unwrap();
        assert_eq!(l.control_plane, ["node1", "node2"]);
        assert_eq!(l.etcd, ["node1"]);
        assert_eq!(
            inv.host("node2").unwrap().addr().as_deref(),
            Some("10.6.0.12")
        );
    }

    #[test]
    fn kubeasz_ini() {
        let inv = parse(
            "[etcd]\n192.168.1.1\n192.168.1.2\n192.168.1.3\n\n[kube_master]\n192.168.1.1 k8s_nodename='master-01'\n192.168.1.2 k8s_nodename='master-02'\n\n[kube_node]\n192.168.1.4 k8s_nodename='worker-01'\n\n[all:vars]\nSECURE_PORT=\"6443\"\nCONTAINER_RUNTIME=\"containerd\"\n",
        )
        .unwrap();
        let l = inv.layout().unwrap();
        assert_eq!(l.flavour, Flavour::Kubeasz);
        assert_eq!(l.control_plane, ["192.168.1.1", "192.168.1.2"]);
        assert_eq!(l.etcd.len(), 3);
        assert_eq!(inv.find("master-02").unwrap().name, "192.168.1.2");
        assert_eq!(
            inv.host("192.168.1.4").unwrap().addr().as_deref(),
            Some("192.168.1.4")
        );
    }

    #[test]
    fn bad_inventories() {
        assert!(parse("[etcd]\nnode1\n")
            .unwrap()
            .layout()
            .unwrap_err()
            .to_string()
            .contains("kube_control_plane"));
        assert!(parse("[kube_master]\nnode[1:3]\n")
            .unwrap_err()
            .to_string()
            .contains("host ranges"));
        assert!(parse("[a:children]\nb\n[b:children]\na\n")
            .unwrap_err()
            .to_string()
            .contains("its own child"));
        assert!(parse("[kube_master]\nnode1 ip=\"10.0.0.1\n")
            .unwrap_err()
            .to_string()
            .contains("unterminated"));
    }
}
