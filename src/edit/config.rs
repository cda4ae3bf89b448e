//! The settings that list control-plane members, edited in place: kube-apiserver's
//! `--etcd-servers`, etcd's `--initial-cluster` and `ETCD_INITIAL_CLUSTER`. They are found the
//! same way in a systemd unit (`  --flag=value \` continuation lines, `Environment=`), a static
//! pod manifest (`- --flag=value`, quoted or not) and an environment file (`KEY=value`,
//! `KEY="value"`, `export KEY=value`). Only the value's bytes change: one changed line per
//! occurrence, everything else byte-identical. Comment lines are left alone.
//!
//! Each edit returns `Ok(None)` when there is nothing to change (the setting is absent, or
//! already says what is asked), `Ok(Some(text))` with the whole new text, or a one-line error.

use super::error::Error;
use std::ops::Range;

/// kube-apiserver's list of etcd client URLs.
pub const ETCD_SERVERS: &str = "--etcd-servers";
/// etcd's bootstrap membership, as a flag and as the variable etcd reads natively.
pub const INITIAL_CLUSTER: &[&str] = &["--initial-cluster", "ETCD_INITIAL_CLUSTER"];

/// One occurrence of a setting in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// 1-based line number.
    pub line: usize,
    /// The key as matched (`--etcd-servers`, `ETCD_INITIAL_CLUSTER`).
    pub key: &'static str,
    /// The value, without quotes.
    pub value: String,
    /// The value's bytes in the text.
    pub span: Range<usize>,
}

/// Every occurrence of `key` (a `--flag` or an environment variable name) outside comments.
/// A flag is matched as `--flag=value` or `--flag value` (same line); a variable as `KEY=value`
/// after the start of the line, a blank, a quote or `=` (`Environment=KEY=value`).
pub fn find(text: &str, key: &'static str) -> Vec<Found> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (n, raw) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        // A key inside the value just found (`K=K=v`) is part of that value, not a setting.
        let mut value_end = 0;
        for (i, _) in line.match_indices(key) {
            if i < value_end {
                continue;
            }
            let before = line[..i].chars().last();
            let boundary = match before {
                None => true,
                Some(c) => {
                    c.is_whitespace()
                        || c == '"'
                        || c == '\''
                        || (c == '=' && !key.starts_with('-'))
                }
            };
            if !boundary {
                continue;
            }
            let rest = &line[i + key.len()..];
            let value_at = if let Some(v) = rest.strip_prefix('=') {
                rest.len() - v.len()
            } else if key.starts_with("--") && rest.starts_with([' ', '\t']) {
                let v = rest.trim_start_matches([' ', '\t']);
                if v.is_empty() || v.starts_with(['-', '\\', '#']) {
                    continue;
                }
                rest.len() - v.len()
            } else {
                continue;
            };
            let mut v0 = i + key.len() + value_at;
            if line[v0..].starts_with(['"', '\'']) {
                v0 += 1;
            }
            let len = line[v0..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
                .unwrap_or(line.len() - v0);
            value_end = v0 + len;
            out.push(Found {
                line: n + 1,
                key,
                value: line[v0..v0 + len].to_string(),
                span: start + v0..start + v0 + len,
            });
        }
    }
    out
}

/// Replaces the value of every occurrence of the keys through `f` (`None`: leave it).
fn edit(
    text: &str,
    keys: &[&'static str],
    mut f: impl FnMut(&Found) -> Result<Option<String>, Error>,
) -> Result<Option<String>, Error> {
    let mut found: Vec<Found> = keys.iter().flat_map(|k| find(text, k)).collect();
    found.sort_by_key(|f| f.span.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    let mut changed = false;
    for occ in &found {
        // Occurrences of different keys never overlap in a well-formed file; in any other,
        // the first one wins and the text it covers is not edited twice.
        if occ.span.start < at {
            continue;
        }
        if let Some(new) = f(occ)? {
            if new != occ.value {
                out.push_str(&text[at..occ.span.start]);
                out.push_str(&new);
                at = occ.span.end;
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    out.push_str(&text[at..]);
    Ok(Some(out))
}

/// The host of a URL (`https://[fd00::1]:2379` gives `fd00::1`), or of `host:port`.
pub fn url_host(url: &str) -> &str {
    host_port(url).0
}

/// Host and port of a URL or of `host:port`; brackets of an IPv6 literal removed.
pub fn host_port(url: &str) -> (&str, Option<u16>) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']').unwrap_or((inner, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has more than one colon and no port.
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

/// Whether two hosts are the same: IP addresses by value (`::1` is `0:0::1`), names without
/// regard to case.
pub fn same_host(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.trim_start_matches('[').trim_end_matches(']').to_string();
    let (a, b) = (strip(a), strip(b));
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(&b),
    }
}

fn same_endpoint(a: &str, b: &str) -> bool {
    let (ha, pa) = host_port(a);
    let (hb, pb) = host_port(b);
    same_host(ha, hb) && pa == pb
}

/// kube-apiserver's `--etcd-servers`: every URL whose host is one of `retire` (hosts, or names
/// when the URLs use names) removed, each of `add` (client URLs) appended unless already
/// listed. An edit that would leave the list empty is an error.
pub fn etcd_servers(text: &str, retire: &[&str], add: &[String]) -> Result<Option<String>, Error> {
    edit(text, &[ETCD_SERVERS], |occ| {
        let listed: Vec<&str> = occ.value.split(',').filter(|u| !u.is_empty()).collect();
        let mut kept: Vec<String> = listed
            .iter()
            .filter(|u| !retire.iter().any(|r| same_host(url_host(u), r)))
            .map(|u| u.to_string())
            .collect();
        for u in add {
            if !kept.iter().any(|k| same_endpoint(k, u)) {
                kept.push(u.clone());
            }
        }
        if kept.is_empty() {
            return Err(Error::Config(format!(
                "line {}: removing {} leaves {ETCD_SERVERS} empty",
                occ.line,
                retire.join(", ")
            )));
        }
        Ok(Some(kept.join(",")))
    })
}

/// etcd's `--initial-cluster` / `ETCD_INITIAL_CLUSTER` (`name=peer-url,...`): every entry whose
/// name is one of `retire`, or whose peer URL's host is, removed; each `(name, peer url)` of
/// `add` put in the place of a removed entry of the same name (a member replaced on a new
/// address), else appended. A name already listed with another URL, a URL already listed under
/// another name, an entry that is not `name=url`, or an edit leaving no member: an error.
pub fn initial_cluster(
    text: &str,
    retire: &[&str],
    add: &[(String, String)],
) -> Result<Option<String>, Error> {
    edit(text, INITIAL_CLUSTER, |occ| {
        let at = |msg: String| Error::Config(format!("line {}: {} {msg}", occ.line, occ.key));
        let mut entries: Vec<(String, String)> = Vec::new();
        for e in occ.value.split(',').filter(|e| !e.is_empty()) {
            let (name, url) = e
                .split_once('=')
                .ok_or_else(|| at(format!("entry `{e}` is not NAME=URL")))?;
            // A peer URL, or the value is not a member list to edit (`K=K=v`, a typo): say so
            // rather than rewrite it.
            let peer_url = (url.starts_with("https://") || url.starts_with("http://"))
                && crate::endpoint::url_host(url).is_some();
            if !peer_url {
                return Err(at(format!(
                    "entry `{e}` is not NAME=URL (`{url}` is not an http(s) peer URL)"
                )));
            }
            entries.push((name.to_string(), url.to_string()));
        }
        let retired = |(name, url): &(String, String)| {
            retire
                .iter()
                .any(|r| name == r || same_host(url_host(url), r))
        };
        let mut placed = vec![false; add.len()];
        let mut out: Vec<(String, String)> = Vec::new();
        for e in &entries {
            if !retired(e) {
                out.push(e.clone());
                continue;
            }
            if let Some(i) = add
                .iter()
                .enumerate()
                .position(|(i, (n, _))| !placed[i] && *n == e.0)
            {
                placed[i] = true;
                out.push(add[i].clone());
            }
        }
        for (i, (name, url)) in add.iter().enumerate() {
            if placed[i] {
                continue;
            }
            let same_name = out.iter().filter(|(n, _)| n == name).collect::<Vec<_>>();
            if let Some((_, other)) = same_name.iter().find(|(_, u)| !same_endpoint(u, url)) {
                return Err(at(format!("already lists {name} at {other}, not {url}")));
            }
            if let Some((other, _)) = out.iter().find(|(n, u)| n != name && same_endpoint(u, url)) {
                return Err(at(format!("already lists {url} as member {other}")));
            }
            if same_name.is_empty() {
                out.push((name.clone(), url.clone()));
            }
        }
        if out.is_empty() {
            return Err(at(format!(
                "would list no member after removing {}",
                retire.join(", ")
            )));
        }
        Ok(Some(
            out.iter()
                .map(|(n, u)| format!("{n}={u}"))
                .collect::<Vec<_>>()
                .join(","),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER_UNIT: &str =
        include_str!("../../fixtures/binary/etc/systemd/system/kube-apiserver.service");
    const ETCD_UNIT: &str = include_str!("../../fixtures/binary/etc/systemd/system/etcd.service");
    const ETCD_ENV: &str = include_str!("../../fixtures/kubespray/etc/etcd.env");
    const MANIFEST: &str =
        include_str!("../../fixtures/kubespray/etc/kubernetes/manifests/kube-apiserver.yaml");
    const KUBEADM_ETCD: &str =
        include_str!("../../fixtures/kubeadm/etc/kubernetes/manifests/etcd.yaml");

    /// The one line that differs, as (old, new); panics unless exactly one does.
    fn one_changed_line(old: &str, new: &str) -> (String, String) {
        let (a, b): (Vec<&str>, Vec<&str>) = (
            old.split_inclusive('\n').collect(),
            new.split_inclusive('\n').collect(),
        );
        assert_eq!(a.len(), b.len(), "line count changed");
        let diff: Vec<(String, String)> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x != y)
            .map(|(x, y)| (x.to_string(), y.to_string()))
            .collect();
        assert_eq!(diff.len(), 1, "{diff:?}");
        diff[0].clone()
    }

    #[test]
    fn etcd_servers_in_a_unit_loses_every_retired_member() {
        let new = etcd_servers(APISERVER_UNIT, &["172.72.0.96", "172.72.0.97"], &[])
            .unwrap()
            .unwrap();
        let (old_line, new_line) = one_changed_line(APISERVER_UNIT, &new);
        assert_eq!(
            old_line,
            "  --etcd-servers=https://172.72.0.95:2379,https://172.72.0.96:2379,https://172.72.0.97:2379 \\\n"
        );
        assert_eq!(new_line, "  --etcd-servers=https://172.72.0.95:2379 \\\n");
        // The order of the retired members does not matter; the middle one goes too.
        let new = etcd_servers(APISERVER_UNIT, &["172.72.0.96"], &[])
            .unwrap()
            .unwrap();
        assert_eq!(
            one_changed_line(APISERVER_UNIT, &new).1,
            "  --etcd-servers=https://172.72.0.95:2379,https://172.72.0.97:2379 \\\n"
        );
    }

    #[test]
    fn a_key_repeated_inside_its_own_value_is_part_of_the_value() {
        // Found by the unit_config fuzz target: the second occurrence lies inside the first's
        // value, and editing both sliced the text backwards (a panic).
        let text = "ETCD_INITIAL_CLUSTER=ETCD_INITIAL_CLUSTER=etcd1=https://10.0.0.1:2380\n";
        let found = find(text, "ETCD_INITIAL_CLUSTER");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].value,
            "ETCD_INITIAL_CLUSTER=etcd1=https://10.0.0.1:2380"
        );
        // Such a value is no member list: the edit is refused, not made.
        let err = initial_cluster(text, &["etcd1"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not an http(s) peer URL"), "{err}");
        // Found by the long run: another key's name at the start of the value.
        let text = "  --initial-cluster=ETCD_INITIAL_CLUSTER=etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380 \\\n";
        let err = initial_cluster(text, &["etcd2"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn etcd_servers_in_a_manifest_with_an_added_member() {
        let new = etcd_servers(
            MANIFEST,
            &["10.6.0.13"],
            &[
                "https://10.6.0.14:2379".into(),
                "https://10.6.0.11:2379".into(),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            one_changed_line(MANIFEST, &new).1,
            "    - --etcd-servers=https://10.6.0.11:2379,https://10.6.0.12:2379,https://10.6.0.14:2379\n"
        );
    }

    #[test]
    fn etcd_servers_nothing_to_do_and_nothing_left() {
        assert_eq!(etcd_servers(APISERVER_UNIT, &["10.0.0.1"], &[]), Ok(None));
        assert_eq!(etcd_servers(ETCD_UNIT, &["172.72.0.96"], &[]), Ok(None));
        let already = etcd_servers(APISERVER_UNIT, &[], &["https://172.72.0.95:2379".into()]);
        assert_eq!(already, Ok(None));
        let err = etcd_servers(
            APISERVER_UNIT,
            &["172.72.0.95", "172.72.0.96", "172.72.0.97"],
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("leaves --etcd-servers empty"), "{err}");
        assert!(!err.contains('\n'));
        // Not the 10.0.0.1 inside 10.0.0.10, and a longer flag is another flag.
        let text = "ExecStart=/bin/kube-apiserver --etcd-servers-overrides=/events#https://10.0.0.1:2379 --etcd-servers=https://10.0.0.10:2379,https://10.0.0.1:2379\n";
        let new = etcd_servers(text, &["10.0.0.1"], &[]).unwrap().unwrap();
        assert_eq!(
            new,
            "ExecStart=/bin/kube-apiserver --etcd-servers-overrides=/events#https://10.0.0.1:2379 --etcd-servers=https://10.0.0.10:2379\n"
        );
    }

    #[test]
    fn quoted_spaced_commented_and_crlf_values() {
        let text = "# --etcd-servers=https://a:2379,https://b:2379\r\n    - \"--etcd-servers=https://a:2379,https://b:2379\"\r\nX=1 --etcd-servers https://b:2379,https://a:2379 \\\r\n";
        let new = etcd_servers(text, &["b"], &[]).unwrap().unwrap();
        assert_eq!(
            new,
            "# --etcd-servers=https://a:2379,https://b:2379\r\n    - \"--etcd-servers=https://a:2379\"\r\nX=1 --etcd-servers https://a:2379 \\\r\n"
        );
        let ipv6 = "--etcd-servers=https://[fd00::1]:2379,https://[fd00::2]:2379\n";
        assert_eq!(
            etcd_servers(ipv6, &["fd00:0::2"], &[]).unwrap().unwrap(),
            "--etcd-servers=https://[fd00::1]:2379\n"
        );
    }

    #[test]
    fn initial_cluster_flag_by_name_or_address() {
        for who in ["etcd2", "172.72.0.96"] {
            let new = initial_cluster(ETCD_UNIT, &[who, "etcd3"], &[])
                .unwrap()
                .unwrap();
            assert_eq!(
                one_changed_line(ETCD_UNIT, &new).1,
                "  --initial-cluster=etcd1=https://172.72.0.95:2380 \\\n",
                "{who}"
            );
        }
        // --initial-cluster-token and --initial-cluster-state are other flags.
        let new = initial_cluster(ETCD_UNIT, &["etcd1"], &[])
            .unwrap()
            .unwrap();
        assert!(new.contains("  --initial-cluster-token=etcd-cluster-0 \\\n"));
        assert!(new.contains("  --initial-cluster-state=new \\\n"));
    }

    #[test]
    fn initial_cluster_env_file_add_and_replace() {
        let add = [("etcd4".to_string(), "https://10.6.0.14:2380".to_string())];
        let new = initial_cluster(ETCD_ENV, &["etcd3"], &add)
            .unwrap()
            .unwrap();
        assert_eq!(
            one_changed_line(ETCD_ENV, &new).1,
            "ETCD_INITIAL_CLUSTER=etcd1=https://10.6.0.11:2380,etcd2=https://10.6.0.12:2380,etcd4=https://10.6.0.14:2380\n"
        );
        // The first master replaced on a new address keeps its name and its place.
        let add = [("etcd1".to_string(), "https://10.6.0.21:2380".to_string())];
        let new = initial_cluster(ETCD_ENV, &["10.6.0.11"], &add)
            .unwrap()
            .unwrap();
        assert_eq!(
            one_changed_line(ETCD_ENV, &new).1,
            "ETCD_INITIAL_CLUSTER=etcd1=https://10.6.0.21:2380,etcd2=https://10.6.0.12:2380,etcd3=https://10.6.0.13:2380\n"
        );
        // Quoted, exported.
        let text =
            "export ETCD_INITIAL_CLUSTER=\"a=https://1.1.1.1:2380,b=https://1.1.1.2:2380\"\n";
        assert_eq!(
            initial_cluster(text, &["b"], &[]).unwrap().unwrap(),
            "export ETCD_INITIAL_CLUSTER=\"a=https://1.1.1.1:2380\"\n"
        );
        // Environment= in a unit.
        let text =
            "Environment=ETCD_INITIAL_CLUSTER=a=https://1.1.1.1:2380,b=https://1.1.1.2:2380\n";
        assert_eq!(
            initial_cluster(text, &["1.1.1.1"], &[]).unwrap().unwrap(),
            "Environment=ETCD_INITIAL_CLUSTER=b=https://1.1.1.2:2380\n"
        );
    }

    #[test]
    fn initial_cluster_in_a_manifest_and_its_errors() {
        let add = [(
            "master2".to_string(),
            "https://10.21.22.74:2380".to_string(),
        )];
        let new = initial_cluster(KUBEADM_ETCD, &[], &add).unwrap().unwrap();
        assert_eq!(
            one_changed_line(KUBEADM_ETCD, &new).1,
            "    - --initial-cluster=master1=https://10.21.22.73:2380,master2=https://10.21.22.74:2380\n"
        );
        assert_eq!(initial_cluster(KUBEADM_ETCD, &["master2"], &[]), Ok(None));
        let again = [(
            "master1".to_string(),
            "https://10.21.22.73:2380".to_string(),
        )];
        assert_eq!(initial_cluster(KUBEADM_ETCD, &[], &again), Ok(None));
        let moved = [("master1".to_string(), "https://10.0.0.9:2380".to_string())];
        let err = initial_cluster(KUBEADM_ETCD, &[], &moved)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already lists master1 at https://10.21.22.73:2380"),
            "{err}"
        );
        let taken = [("m9".to_string(), "https://10.21.22.73:2380".to_string())];
        let err = initial_cluster(KUBEADM_ETCD, &[], &taken)
            .unwrap_err()
            .to_string();
        assert!(err.contains("as member master1"), "{err}");
        let err = initial_cluster(KUBEADM_ETCD, &["master1"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("line ") && err.contains("no member"),
            "{err}"
        );
        let err = initial_cluster("--initial-cluster=a=https://x:2380,junk\n", &["a"], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`junk` is not NAME=URL"), "{err}");
    }

    #[test]
    fn find_reports_lines_and_spans() {
        let f = find(APISERVER_UNIT, ETCD_SERVERS);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].line, 18);
        assert_eq!(&APISERVER_UNIT[f[0].span.clone()], f[0].value);
        assert_eq!(host_port("https://[::1]:2379"), ("::1", Some(2379)));
        assert_eq!(host_port("10.0.0.1:6443"), ("10.0.0.1", Some(6443)));
        assert_eq!(host_port("fd00::1"), ("fd00::1", None));
        assert!(same_host("FD00::1", "[fd00:0::1]") && same_host("Node1", "node1"));
    }
}
