//! The health gates of each step: from what the node says about the component (where it
//! listens, which CA verifies it, which client certificate a probe presents), else from the
//! profile; the URL and SAN helpers they share.

use std::path::{Path, PathBuf};

use super::etcd::etcd_identity;
use super::*;

/// `IP:…`/`DNS:…` of a certificate, as bundle.json lists them.
pub fn sans_of(c: &CertInfo) -> Vec<String> {
    c.sans
        .ip
        .iter()
        .map(|i| format!("IP:{i}"))
        .chain(c.sans.dns.iter().map(|d| format!("DNS:{d}")))
        .collect()
}

/// Whether a SAN list covers `host` (an IP or a DNS name, `*.` wildcards one label deep).
pub fn covers(sans: &[String], host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    sans.iter().any(|s| {
        if let Some(ip) = s.strip_prefix("IP:") {
            return ip == host;
        }
        let Some(dns) = s.strip_prefix("DNS:") else {
            return false;
        };
        if dns.eq_ignore_ascii_case(host) {
            return true;
        }
        match (dns.strip_prefix("*."), host.split_once('.')) {
            (Some(suffix), Some((_, rest))) => suffix.eq_ignore_ascii_case(rest),
            _ => false,
        }
    })
}

pub fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The certificate a component serves on its gate, and the SANs it will have after the swap.
pub(super) struct Serving {
    index: Option<usize>,
    path: Option<PathBuf>,
    sans: Vec<String>,
    /// SANs of the certificate it serves now (what a rollback's gate sees).
    old_sans: Vec<String>,
}

pub(super) fn serving(
    path: Option<PathBuf>,
    mine: &[usize],
    files: &[FileSwap],
    read: Read,
) -> Serving {
    let index = path
        .as_ref()
        .and_then(|p| mine.iter().copied().find(|&i| same(&files[i].target, p)));
    let old_sans = path
        .as_ref()
        .and_then(|p| read(p))
        .and_then(|b| first_cert(&b))
        .map(|c| sans_of(&c))
        .unwrap_or_default();
    let sans = match index {
        Some(i) => files[i].sans.clone(),
        None => old_sans.clone(),
    };
    Serving {
        index,
        path,
        sans,
        old_sans,
    }
}

/// Picks the first candidate host that both the new and the current certificate cover (so the
/// same gate proves the rollout and a rollback), else the first the new one covers.
pub(super) fn pick_host(candidates: &[String], serving: &Serving) -> Option<String> {
    candidates
        .iter()
        .find(|h| covers(&serving.sans, h) && covers(&serving.old_sans, h))
        .or_else(|| candidates.iter().find(|h| covers(&serving.sans, h)))
        .cloned()
}

pub(super) fn url_parts(url: &str) -> Option<(String, String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let (h, p) = r.split_once("]:")?;
        (h.to_string(), p)
    } else {
        let (h, p) = authority.rsplit_once(':')?;
        (h.to_string(), p)
    };
    Some((scheme.to_string(), host, port.parse().ok()?))
}

pub(super) fn url(scheme: &str, host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

/// A client identity that `read` shows usable for TLS client auth: a certificate with the
/// client-auth usage (or none) and a key file next to it.
pub(super) fn usable_identity(cert: &Path, key: &Path, read: Read) -> bool {
    let Some(c) = read(cert).and_then(|b| first_cert(&b)) else {
        return false;
    };
    let client = c.ext_key_usage.is_empty() || c.ext_key_usage.iter().any(|u| u == "client auth");
    client && read(key).is_some()
}

/// The gates of one step (and why there are none, when there cannot be any).
#[allow(clippy::too_many_arguments)]
pub(super) fn gates_for(
    root: &Path,
    cand: &Cand,
    mine: &[usize],
    files: &[FileSwap],
    node: &[NodeComponent],
    ov: &Overrides,
    read: Read,
    problems: &mut Vec<String>,
) -> Result<(Vec<Gate>, Option<String>)> {
    let name = &cand.name;
    let (mut gates, mut note, serves_path) = match cand.node {
        Some(c) => derive(c, root, node, mine, files, read, problems),
        None => {
            let gates = profile_gates(cand, mine, files)?;
            let note = gates.is_empty().then(|| {
                format!(
                    "{} was not found on this node and its profile ({}) names no health endpoint: only the restart's exit status proves it",
                    cand.name, cand.from
                )
            });
            (gates, note, None)
        }
    };
    if let Some((_, u)) = ov.health.iter().rev().find(|(n, _)| n == name) {
        let (scheme_url, path) = match u
            .find("://")
            .and_then(|s| u[s + 3..].find('/').map(|i| s + 3 + i))
        {
            Some(i) => (
                u[..i].to_string(),
                Some(u[i..].to_string()).filter(|p| p != "/"),
            ),
            None => (u.clone(), None),
        };
        let mut g = gates.first().cloned().unwrap_or(Gate {
            url: String::new(),
            path: None,
            expect: None,
            trust: Trust::Plain,
            client: None,
            serves: None,
            origin: String::new(),
        });
        if g.path != path {
            g.expect = None;
        }
        g.url = scheme_url;
        g.path = path;
        g.origin = format!("--health {name}");
        if g.serves.is_none() {
            // The component's serving certificate, wherever the user points the gate.
            g.serves = serves_path
                .as_deref()
                .and_then(|p| mine.iter().copied().find(|&i| same(&files[i].target, p)))
                .or_else(|| main_cert(mine, files));
        }
        let https = g.url.starts_with("https://");
        if https && matches!(g.trust, Trust::Plain) {
            g.trust = match g.serves {
                Some(i) => Trust::Ca(files[i].ca.clone()),
                None => Trust::SelfSigned,
            };
        }
        if !https {
            g.trust = Trust::Plain;
        }
        gates = vec![g];
        note = None;
    }
    let pick = |v: &[(String, PathBuf)]| {
        v.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
    };
    if let Some(ca) = pick(&ov.health_ca) {
        gates
            .iter_mut()
            .for_each(|g| g.trust = Trust::Ca(ca.clone()));
    }
    match (pick(&ov.health_cert), pick(&ov.health_key)) {
        (Some(cert), Some(key)) => gates.iter_mut().for_each(|g| {
            g.client = Some(Identity {
                cert: cert.clone(),
                key: key.clone(),
            })
        }),
        (None, None) => {}
        _ => {
            return Err(crate::rollout::Error::HalfIdentity {
                name: name.to_string(),
            }
            .into())
        }
    }
    Ok((gates, note))
}

/// The certificate a profile component most likely serves: a server role among its files.
/// The certificate a profile component most likely serves: a serving role among its files
/// (a client certificate such as the controller-manager's is not served).
pub(super) fn main_cert(mine: &[usize], files: &[FileSwap]) -> Option<usize> {
    mine.iter()
        .copied()
        .filter(|&i| {
            files[i].kind == "certificate"
                && matches!(
                    files[i].role.as_str(),
                    "etcd-server" | "etcd-peer" | "apiserver" | "kubelet"
                )
        })
        .max_by_key(|&i| {
            (
                matches!(files[i].role.as_str(), "etcd-server" | "apiserver"),
                std::cmp::Reverse(i),
            )
        })
}

pub(super) fn profile_gates(cand: &Cand, mine: &[usize], files: &[FileSwap]) -> Result<Vec<Gate>> {
    let mut out = Vec::new();
    for h in &cand.health {
        if h.url.contains('{') {
            return Err(crate::rollout::Error::UnresolvedHealth {
                url: h.url.clone(),
                name: cand.name.clone(),
            }
            .into());
        }
        let host = url_parts(&h.url).map(|(_, h, _)| h).unwrap_or_default();
        let serves = match &h.serves {
            Some(p) => mine.iter().copied().find(|&i| same(p, &files[i].target)),
            None => mine
                .iter()
                .copied()
                .filter(|&i| main_cert(&[i], files).is_some() && covers(&files[i].sans, &host))
                .max_by_key(|&i| {
                    (
                        matches!(files[i].role.as_str(), "etcd-server" | "apiserver"),
                        std::cmp::Reverse(i),
                    )
                })
                // Not covered: still the one it serves; validation says so.
                .or_else(|| main_cert(mine, files)),
        };
        let trust = if h.url.starts_with("http://") {
            Trust::Plain
        } else {
            match (&h.ca, serves) {
                (Some(ca), _) => Trust::Ca(ca.clone()),
                (None, Some(i)) => Trust::Ca(files[i].ca.clone()),
                (None, None) => Trust::SelfSigned,
            }
        };
        out.push(Gate {
            url: h.url.clone(),
            path: h.path.clone(),
            expect: h.expect.clone(),
            trust,
            client: h
                .client_cert
                .clone()
                .zip(h.client_key.clone())
                .map(|(cert, key)| Identity { cert, key }),
            serves,
            origin: format!("profile component {}", cand.name),
        });
    }
    Ok(out)
}

pub(super) type Derived = (Vec<Gate>, Option<String>, Option<PathBuf>);

/// Gates from what the node says about the component.
pub(super) fn derive(
    c: &NodeComponent,
    root: &Path,
    node: &[NodeComponent],
    mine: &[usize],
    files: &[FileSwap],
    read: Read,
    problems: &mut Vec<String>,
) -> Derived {
    let path = |name: &str| c.path(root, name);
    let ca_for = |serving: &Serving, fallback: Option<PathBuf>| -> Option<Trust> {
        serving
            .index
            .map(|i| files[i].ca.clone())
            .or(fallback)
            .map(Trust::Ca)
    };
    match c.kind.as_str() {
        "etcd" => {
            let serving = serving(path("cert-file"), mine, files, read);
            let urls = c
                .get("listen-client-urls")
                .unwrap_or("http://localhost:2379");
            let advertised: Vec<String> = c
                .get("advertise-client-urls")
                .unwrap_or("")
                .split(',')
                .filter_map(|u| url_parts(u.trim()).map(|(_, h, _)| h))
                .collect();
            let mut https: Vec<(String, u16)> = Vec::new();
            let mut plain: Vec<(String, u16)> = Vec::new();
            for u in urls.split(',') {
                let Some((scheme, host, port)) = url_parts(u.trim()) else {
                    continue;
                };
                let hosts: Vec<String> = if host == "0.0.0.0" || host == "::" || host.is_empty() {
                    std::iter::once("127.0.0.1".to_string())
                        .chain(advertised.iter().cloned())
                        .collect()
                } else {
                    vec![host]
                };
                for h in hosts {
                    if scheme == "https" {
                        https.push((h, port))
                    } else {
                        plain.push((h, port))
                    }
                }
            }
            https.sort_by_key(|(h, _)| !is_loopback(h));
            let origin = c.origin("listen-client-urls");
            if https.is_empty() {
                let note = format!("etcd serves clients over plain HTTP only ({origin}): no gate can prove which certificate it serves");
                return match plain.first() {
                    Some((h, p)) if serving.index.is_none() => (
                        vec![Gate {
                            url: url("http", h, *p),
                            path: Some("/health".into()),
                            expect: Some("\"health\":\"true\"".into()),
                            trust: Trust::Plain,
                            client: None,
                            serves: None,
                            origin,
                        }],
                        None,
                        serving.path,
                    ),
                    _ => (vec![], Some(note), serving.path),
                };
            }
            let hosts: Vec<String> = https.iter().map(|(h, _)| h.clone()).collect();
            let host = pick_host(&hosts, &serving).unwrap_or_else(|| hosts[0].clone());
            let port = https
                .iter()
                .find(|(h, _)| *h == host)
                .map_or(2379, |(_, p)| *p);
            let trust = ca_for(&serving, path("trusted-ca-file")).unwrap_or(Trust::SelfSigned);
            let client = if c.flag_on("client-cert-auth") {
                let id = etcd_identity(root, node, &path, read);
                if id.is_none() {
                    problems.push(format!(
                        "etcd: requires client certificates ({}) and none usable was found (kubeadm's healthcheck-client beside the trusted CA, the apiserver's --etcd-certfile, etcd's own --cert-file with client auth); pass --health-cert etcd=FILE --health-key etcd=FILE",
                        c.origin("client-cert-auth")
                    ));
                }
                id
            } else {
                None
            };
            (
                vec![Gate {
                    url: url("https", &host, port),
                    path: Some("/health".into()),
                    expect: Some("\"health\":\"true\"".into()),
                    trust,
                    client,
                    serves: serving.index,
                    origin,
                }],
                None,
                serving.path,
            )
        }
        "kube-apiserver" => {
            let serving = serving(path("tls-cert-file"), mine, files, read);
            let port: u16 = c
                .get("secure-port")
                .and_then(|p| p.parse().ok())
                .unwrap_or(6443);
            let bind = c.get("bind-address").unwrap_or("0.0.0.0");
            let mut hosts: Vec<String> = Vec::new();
            if bind != "0.0.0.0" && bind != "::" {
                hosts.push(bind.to_string());
            } else {
                hosts.extend(
                    c.probes
                        .iter()
                        .filter(|p| p.scheme == "https" && p.port == port)
                        .filter_map(|p| p.host.clone()),
                );
                hosts.extend(c.get("advertise-address").map(str::to_string));
                hosts.extend(["127.0.0.1".to_string(), "localhost".to_string()]);
            }
            let host = pick_host(&hosts, &serving).unwrap_or_else(|| hosts[0].clone());
            let trust = match serving.path {
                Some(_) => ca_for(&serving, path("client-ca-file")).unwrap_or(Trust::SelfSigned),
                None => Trust::SelfSigned,
            };
            let client = (c.get("anonymous-auth") == Some("false"))
                .then(|| path("kubelet-client-certificate").zip(path("kubelet-client-key")))
                .flatten()
                .map(|(cert, key)| Identity { cert, key });
            (
                vec![Gate {
                    url: url("https", &host, port),
                    path: Some("/readyz".into()),
                    expect: None,
                    trust,
                    client,
                    serves: serving.index,
                    origin: format!(
                        "{} (--secure-port, --bind-address, --advertise-address)",
                        c.source.display()
                    ),
                }],
                None,
                serving.path,
            )
        }
        "kube-controller-manager" | "kube-scheduler" => {
            let default_port = if c.kind == "kube-scheduler" {
                10259
            } else {
                10257
            };
            let port: u16 = c
                .get("secure-port")
                .and_then(|p| p.parse().ok())
                .unwrap_or(default_port);
            if port == 0 {
                return (
                    vec![],
                    Some(format!(
                        "{} serves no HTTPS (--secure-port=0): nothing to probe",
                        c.kind
                    )),
                    None,
                );
            }
            let bind = c.get("bind-address").unwrap_or("0.0.0.0");
            let probe = c
                .probes
                .iter()
                .find(|p| p.scheme == "https" && p.port == port);
            let host = probe.and_then(|p| p.host.clone()).unwrap_or_else(|| {
                if bind == "0.0.0.0" || bind == "::" {
                    "127.0.0.1".into()
                } else {
                    bind.to_string()
                }
            });
            let serving = serving(path("tls-cert-file"), mine, files, read);
            let trust = match serving.path {
                Some(_) => ca_for(&serving, path("client-ca-file")).unwrap_or(Trust::SelfSigned),
                None => Trust::SelfSigned,
            };
            (
                vec![Gate {
                    url: url("https", &host, port),
                    path: Some(probe.map_or("/healthz".into(), |p| p.path.clone())),
                    expect: None,
                    trust,
                    client: None,
                    serves: serving.index,
                    origin: format!("{} (--secure-port, --bind-address)", c.source.display()),
                }],
                None,
                serving.path,
            )
        }
        "kubelet" | "kube-proxy" => {
            let (default_port, key) = if c.kind == "kubelet" {
                (10248, "healthz-port")
            } else {
                (10256, "healthz-bind-address")
            };
            let (mut host, mut port) = ("127.0.0.1".to_string(), default_port);
            if c.kind == "kubelet" {
                if let Some(p) = c.get("healthz-port").and_then(|p| p.parse().ok()) {
                    port = p;
                }
                if let Some(h) = c.get("healthz-bind-address") {
                    host = h.to_string();
                }
            } else if let Some(v) = c.get(key) {
                if let Some((h, p)) = v.rsplit_once(':') {
                    if let Ok(p) = p.parse() {
                        port = p;
                    }
                    if !h.is_empty() && h != "0.0.0.0" {
                        host = h.to_string();
                    }
                }
            }
            if host == "0.0.0.0" {
                host = "127.0.0.1".into();
            }
            if port == 0 {
                return (
                    vec![],
                    Some(format!(
                        "{}'s healthz is disabled ({}=0): only the restart's exit status proves it",
                        c.kind, key
                    )),
                    None,
                );
            }
            (
                vec![Gate {
                    url: url("http", &host, port),
                    path: Some("/healthz".into()),
                    expect: Some("ok".into()),
                    trust: Trust::Plain,
                    client: None,
                    serves: None,
                    origin: c.origin(key),
                }],
                None,
                None,
            )
        }
        _ => (
            vec![],
            Some(format!(
                "{} has no health endpoint of its own: only the restart's exit status proves it",
                c.kind
            )),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_and_loopback() {
        let sans = vec![
            "IP:127.0.0.1".to_string(),
            "DNS:*.example.com".into(),
            "DNS:etcd1".into(),
        ];
        assert!(covers(&sans, "127.0.0.1"));
        assert!(covers(&sans, "a.example.com"));
        assert!(!covers(&sans, "a.b.example.com"));
        assert!(!covers(&sans, "10.0.0.1"));
        assert!(is_loopback("127.0.0.12") && is_loopback("localhost") && !is_loopback("10.6.0.11"));
        assert_eq!(
            url_parts("https://[::1]:2379"),
            Some(("https".into(), "::1".into(), 2379))
        );
        assert_eq!(
            url_parts("https://10.6.0.11:2379"),
            Some(("https".into(), "10.6.0.11".into(), 2379))
        );
    }
}
