//! How the etcd membership steps reach etcd, and the client certificate a probe of etcd
//! presents: both read from the node.

use std::path::{Path, PathBuf};

use super::gates::*;
use super::*;

/// The client certificate a probe of etcd presents (etcd runs with --client-cert-auth): the
/// first usable of kubeadm's healthcheck-client beside the trusted CA, the apiserver's
/// `--etcd-certfile` on this node, and etcd's own serving then peer certificate.
pub(super) fn etcd_identity(
    root: &Path,
    node: &[NodeComponent],
    path: &dyn Fn(&str) -> Option<PathBuf>,
    read: Read,
) -> Option<Identity> {
    let mut tries: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let Some(dir) = path("trusted-ca-file").and_then(|p| p.parent().map(Path::to_path_buf)) {
        tries.push((
            dir.join("healthcheck-client.crt"),
            dir.join("healthcheck-client.key"),
        ));
    }
    for api in node.iter().filter(|n| n.kind == "kube-apiserver") {
        let p = |name: &str| api.path(root, name);
        if let (Some(cert), Some(key)) = (p("etcd-certfile"), p("etcd-keyfile")) {
            tries.push((cert, key));
        }
    }
    for (cert, key) in [
        ("cert-file", "key-file"),
        ("peer-cert-file", "peer-key-file"),
    ] {
        if let (Some(cert), Some(key)) = (path(cert), path(key)) {
            tries.push((cert, key));
        }
    }
    tries
        .into_iter()
        .find(|(cert, key)| usable_identity(cert, key, read))
        .map(|(cert, key)| Identity { cert, key })
}

/// How the etcd membership steps reach etcd, read from the node as etcd's gate is: an https
/// client URL etcd listens on (loopback first, a wildcard as 127.0.0.1 then its advertised hosts;
/// one its current serving certificate covers), its `--trusted-ca-file`, and the client
/// certificate its gate would present. On a node without etcd: the apiserver's
/// `--etcd-servers`, `--etcd-cafile`, `--etcd-certfile`/`--etcd-keyfile`. `--health`,
/// `--health-ca`, `--health-cert`/`--health-key` for `etcd` override each. Why none can be
/// derived is one line.
pub fn etcd_access(
    root: &Path,
    node: &[NodeComponent],
    ov: &Overrides,
    read: Read,
) -> std::result::Result<crate::rollout::membership::Access, crate::rollout::Error> {
    let over = |v: &[(String, PathBuf)]| {
        v.iter()
            .rev()
            .find(|(n, _)| n == "etcd")
            .map(|(_, p)| p.clone())
    };
    let etcd = node.iter().find(|c| c.kind == "etcd");
    let api = node
        .iter()
        .find(|c| c.kind == "kube-apiserver" && c.get("etcd-servers").is_some());
    let mut origin = Vec::new();
    let bootstrap = if let Some((_, u)) = ov.health.iter().rev().find(|(n, _)| n == "etcd") {
        let (scheme, target) = crate::rollout::plan::parse_url(u)?;
        if scheme != "https" {
            return Err(crate::rollout::Error::EtcdNotHttps { url: u.clone() });
        }
        origin.push("endpoint from --health etcd".to_string());
        format!("https://{}", target.authority())
    } else if let Some(c) = etcd {
        let urls = c.get("listen-client-urls").unwrap_or("");
        let advertised: Vec<String> = c
            .get("advertise-client-urls")
            .unwrap_or("")
            .split(',')
            .filter_map(|u| url_parts(u.trim()).map(|(_, h, _)| h))
            .collect();
        let mut https: Vec<(String, u16)> = Vec::new();
        for u in urls.split(',') {
            let Some((scheme, host, port)) = url_parts(u.trim()) else {
                continue;
            };
            if scheme != "https" {
                continue;
            }
            if host == "0.0.0.0" || host == "::" || host.is_empty() {
                https.push(("127.0.0.1".into(), port));
                https.extend(advertised.iter().map(|h| (h.clone(), port)));
            } else {
                https.push((host, port));
            }
        }
        https.sort_by_key(|(h, _)| !is_loopback(h));
        let sans = c
            .path(root, "cert-file")
            .and_then(|p| read(&p))
            .and_then(|b| first_cert(&b))
            .map(|c| sans_of(&c))
            .unwrap_or_default();
        let Some((host, port)) = https
            .iter()
            .find(|(h, _)| covers(&sans, h))
            .or(https.first())
            .cloned()
        else {
            return Err(crate::rollout::Error::EtcdListensNoHttps {
                origin: c.origin("listen-client-urls"),
            });
        };
        origin.push(format!("endpoint from {}", c.origin("listen-client-urls")));
        url("https", &host, port)
    } else if let Some(a) = api {
        let servers = a.get("etcd-servers").unwrap_or("");
        let Some(first) = servers
            .split(',')
            .map(str::trim)
            .find(|u| u.starts_with("https://"))
        else {
            return Err(crate::rollout::Error::EtcdServersNoHttps {
                servers: servers.into(),
            });
        };
        origin.push(format!("endpoint from {}", a.origin("etcd-servers")));
        let (_, target) = crate::rollout::plan::parse_url(first)?;
        format!("https://{}", target.authority())
    } else {
        return Err(crate::rollout::Error::NoWayToEtcd);
    };
    let ca = if let Some(ca) = over(&ov.health_ca) {
        origin.push("CA from --health-ca etcd".into());
        ca
    } else if let Some((c, ca)) = etcd.and_then(|c| c.path(root, "trusted-ca-file").map(|p| (c, p)))
    {
        origin.push(format!("CA from {}", c.origin("trusted-ca-file")));
        ca
    } else if let Some((a, ca)) = api.and_then(|a| a.path(root, "etcd-cafile").map(|p| (a, p))) {
        origin.push(format!("CA from {}", a.origin("etcd-cafile")));
        ca
    } else {
        return Err(crate::rollout::Error::NoEtcdCa);
    };
    let client = match (over(&ov.health_cert), over(&ov.health_key)) {
        (Some(cert), Some(key)) => {
            origin.push("client from --health-cert/--health-key etcd".into());
            Some(Identity { cert, key })
        }
        _ => {
            let derived = match etcd {
                Some(c) => etcd_identity(root, node, &|name: &str| c.path(root, name), read),
                None => api.and_then(|a| {
                    a.path(root, "etcd-certfile")
                        .zip(a.path(root, "etcd-keyfile"))
                        .map(|(cert, key)| Identity { cert, key })
                }),
            };
            if let Some(id) = &derived {
                origin.push(format!("client {}", id.cert.display()));
            }
            derived
        }
    };
    if client.is_none() && etcd.is_none_or(|c| c.flag_on("client-cert-auth")) {
        return Err(crate::rollout::Error::NoEtcdClient);
    }
    Ok(crate::rollout::membership::Access {
        bootstrap,
        ca,
        client,
        origin: origin.join(", "),
    })
}
