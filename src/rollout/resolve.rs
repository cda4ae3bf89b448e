//! Binds a bundle to the node: which component reads each new file (from the node's own
//! manifests and units, [`crate::node`]), how each restarts, and the health gate that proves it
//! (where it serves, which CA verifies it, which client certificate the probe presents). The
//! profile only fills in what the node does not say. Pure: file contents come through `read`.
//!
//! Precedence, per bundle file: a profile component that names the file explicitly; else every
//! component of the node that reads it; else the profile's component of the kind `reissue`
//! recorded for it; else nobody (swapped without a restart). A component restarts when any file
//! it reads changed; the file is swapped right before the first of them restarts.

use std::path::{Path, PathBuf};

use super::plan::{BundleManifest, FileSwap, Gate, Identity, Plan, Step, Trust};
use super::profile::{rank, Health, Profile, Restart};
use crate::error::{Error, Result};
use crate::node::{Component as NodeComponent, Runs};
use crate::pki::cert::CertInfo;
use crate::pki::decode::{decode, Item};

/// Per-component overrides from the command line (`NAME=VALUE` already split).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub restart_cmd: Vec<(String, String)>,
    pub health: Vec<(String, String)>,
    pub health_ca: Vec<(String, PathBuf)>,
    pub health_cert: Vec<(String, PathBuf)>,
    pub health_key: Vec<(String, PathBuf)>,
    /// Restart these even if none of their files changed.
    pub restart: Vec<String>,
    /// `--profile` was given: its components describe this node, so they take the files of
    /// their kind even where the node runs a component of that kind that reads other files.
    /// Detected (not given), the node's own components are the authority: a file of a kind
    /// whose component on this node does not read it is swapped without a restart.
    pub profile_given: bool,
    /// The plan has etcd membership steps: `--health*` for `etcd` reach them, so they are not
    /// an error when no file of etcd changed.
    pub etcd_membership: bool,
}

/// Reads a file's current bytes (or `None`).
pub type Read<'a> = &'a dyn Fn(&Path) -> Option<Vec<u8>>;

/// A component that may take part: from the node or from the profile.
struct Cand<'a> {
    name: String,
    kind: String,
    restart: Restart,
    node: Option<&'a NodeComponent>,
    /// Profile components only: the files it names explicitly, and its health templates.
    explicit: Vec<PathBuf>,
    health: Vec<Health>,
    from: String,
}

fn cands<'a>(node: &'a [NodeComponent], profile: &Profile) -> Vec<Cand<'a>> {
    let mut out: Vec<Cand> = Vec::new();
    for c in node {
        // Control-plane components by kind; a node-local proxy by its own name (kube-lb,
        // nginx-proxy, haproxy), as operators call it.
        let base = match (&c.runs, c.kind.as_str()) {
            (Runs::Systemd(u), "node-local-lb") => u.clone(),
            (Runs::StaticPod(m), "node-local-lb") => m
                .file_stem()
                .map_or(c.kind.clone(), |s| s.to_string_lossy().into_owned()),
            _ => c.kind.clone(),
        };
        let n = out
            .iter()
            .filter(|o| o.name == base || o.name.starts_with(&format!("{base}-")))
            .count();
        let name = if n == 0 {
            base
        } else {
            format!("{base}-{}", n + 1)
        };
        out.push(Cand {
            name,
            kind: c.kind.clone(),
            restart: match &c.runs {
                Runs::StaticPod(m) => Restart::StaticPod(m.clone()),
                Runs::Systemd(u) => Restart::Systemd(u.clone()),
            },
            node: Some(c),
            explicit: vec![],
            health: vec![],
            from: c.source.display().to_string(),
        });
    }
    for c in &profile.components {
        out.push(Cand {
            name: c.name.clone(),
            kind: c.kind.clone(),
            restart: c.restart.clone(),
            node: None,
            explicit: c.files.clone(),
            health: c.health.clone(),
            from: format!("profile {}", profile.name),
        });
    }
    out
}

fn same(a: &Path, b: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs(a) == abs(b)
}

/// Builds the plan for `manifest` (the bundle in `dir`) on the node under `root`, with the
/// problems met while binding it (a gate that needs what the node lacks).
#[allow(clippy::too_many_arguments)]
pub fn build(
    dir: &Path,
    root: &Path,
    manifest: &BundleManifest,
    node: &[NodeComponent],
    profile: &Profile,
    overrides: &Overrides,
    read: Read,
) -> Result<(Plan, Vec<String>)> {
    let dir = std::path::absolute(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca = PathBuf::from(&manifest.ca.certificate);
    let files: Vec<FileSwap> = manifest
        .files
        .iter()
        .map(|f| {
            Ok(FileSwap {
                target: f.target.clone(),
                source: dir.join(&f.bundle_path),
                kind: f.kind.clone(),
                role: f.role.clone(),
                ca: f.ca.clone().unwrap_or_else(|| ca.clone()),
                mode: u32::from_str_radix(&f.mode, 8).map_err(|_| Error::Input {
                    path: dir.join("bundle.json"),
                    expected: "an octal mode".into(),
                    found: f.mode.clone(),
                })?,
                old_sha256: f.old_sha256.clone(),
                new_sha256: f.new_sha256.clone(),
                old_serial: f.old_serial.clone(),
                new_serial: f.new_serial.clone(),
                sans: f.sans.as_ref().map(|s| s.after.clone()).unwrap_or_default(),
                link: None,
            })
        })
        .collect::<Result<_>>()?;
    let cands = cands(node, profile);

    // Who uses each file.
    let users: Vec<Vec<usize>> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let explicit: Vec<usize> = (0..cands.len())
                .filter(|&c| cands[c].explicit.iter().any(|p| same(p, &f.target)))
                .collect();
            if !explicit.is_empty() {
                return explicit;
            }
            let readers: Vec<usize> = (0..cands.len())
                .filter(|&c| cands[c].node.is_some_and(|n| n.reads(&f.target)))
                .collect();
            if !readers.is_empty() {
                return readers;
            }
            (0..cands.len())
                .filter(|&c| {
                    let kind = &cands[c].kind;
                    let node_runs_it = node.iter().any(|n| &n.kind == kind);
                    cands[c].node.is_none()
                        && cands[c].explicit.is_empty()
                        && manifest.files[i].components.contains(kind)
                        && (overrides.profile_given || !node_runs_it)
                })
                .take(1)
                .collect()
        })
        .collect();

    // Overrides must name a component that takes part (or that --restart brings in).
    let known: Vec<&str> = cands.iter().map(|c| c.name.as_str()).collect();
    for r in &overrides.restart {
        if !known.contains(&r.as_str()) {
            return Err(Error::Usage(format!(
                "--restart {r}: expected a component of this node or profile ({}), found none named so",
                known.join(", ")
            )));
        }
    }
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by_key(|&c| (rank(&cands[c].kind), c));
    let mut taken = vec![false; files.len()];
    let mut steps = Vec::new();
    let mut in_plan: Vec<String> = Vec::new();
    let mut found: Vec<String> = Vec::new();
    for c in order {
        let cand = &cands[c];
        let mine: Vec<usize> = (0..files.len())
            .filter(|&i| users[i].contains(&c))
            .collect();
        // --restart NAME brings in one component: the node's own before a profile's.
        let forced = overrides.restart.contains(&cand.name) && !in_plan.contains(&cand.name);
        if mine.is_empty() && !forced {
            continue;
        }
        let swap: Vec<usize> = mine.iter().copied().filter(|&i| !taken[i]).collect();
        let reads: Vec<usize> = mine.iter().copied().filter(|&i| taken[i]).collect();
        for &i in &swap {
            taken[i] = true;
        }
        // A changed unit file or drop-in takes a daemon-reload before the restart.
        let unit_changed = cand.node.is_some_and(|n| {
            mine.iter()
                .any(|&i| n.unit_files.iter().any(|u| same(u, &files[i].target)))
        });
        let restart = match &cand.restart {
            Restart::Systemd(u) if unit_changed => Restart::SystemdReload(u.clone()),
            r => r.clone(),
        };
        let restart = overrides
            .restart_cmd
            .iter()
            .rev()
            .find(|(n, _)| *n == cand.name)
            .map_or(restart, |(_, cmd)| Restart::Command(cmd.clone()));
        let (gates, note) =
            gates_for(root, cand, &mine, &files, node, overrides, read, &mut found)?;
        in_plan.push(cand.name.clone());
        steps.push(Step {
            component: cand.name.clone(),
            kind: cand.kind.clone(),
            restart: Some(restart),
            files: swap,
            reads,
            gates,
            note,
            from: cand.from.clone(),
        });
    }
    let rest: Vec<usize> = (0..files.len()).filter(|&i| !taken[i]).collect();
    if !rest.is_empty() {
        steps.push(Step {
            component: "files-only".into(),
            kind: "none".into(),
            restart: None,
            files: rest,
            reads: vec![],
            gates: vec![],
            note: Some(
                "read by no component of this node (another node's copy, or a file for kubectl): swapped, nothing restarted"
                    .into(),
            ),
            from: String::new(),
        });
    }
    let named = overrides
        .restart_cmd
        .iter()
        .map(|(n, _)| ("--restart-cmd", n))
        .chain(overrides.health.iter().map(|(n, _)| ("--health", n)))
        .chain(overrides.health_ca.iter().map(|(n, _)| ("--health-ca", n)))
        .chain(
            overrides
                .health_cert
                .iter()
                .map(|(n, _)| ("--health-cert", n)),
        )
        .chain(
            overrides
                .health_key
                .iter()
                .map(|(n, _)| ("--health-key", n)),
        );
    for (flag, n) in named {
        if overrides.etcd_membership && n == "etcd" && flag != "--restart-cmd" {
            continue;
        }
        if !in_plan.contains(n) {
            return Err(Error::Usage(format!(
                "{flag} {n}: `{n}` has no changed file in this bundle, so the plan does not restart it (it restarts: {}); add --restart {n} to restart it anyway",
                if in_plan.is_empty() { "nothing".to_string() } else { in_plan.join(", ") }
            )));
        }
    }
    let name = if node.is_empty() {
        profile.name.clone()
    } else {
        format!("node (+ profile {})", profile.name)
    };
    // A client identity given on the command line replaces a derived one that was missing.
    found.retain(|p| {
        let comp = p.split(':').next().unwrap_or("");
        !overrides.health_cert.iter().any(|(n, _)| n == comp)
    });
    Ok((
        Plan {
            bundle: dir,
            ca,
            profile: name,
            files,
            steps,
            etcd: None,
        },
        found,
    ))
}

fn first_cert(bytes: &[u8]) -> Option<CertInfo> {
    decode(Path::new(""), bytes)
        .items
        .into_iter()
        .find_map(|i| match i {
            Item::Cert { index: 0, info } => Some(*info),
            _ => None,
        })
}

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
struct Serving {
    index: Option<usize>,
    path: Option<PathBuf>,
    sans: Vec<String>,
    /// SANs of the certificate it serves now (what a rollback's gate sees).
    old_sans: Vec<String>,
}

fn serving(path: Option<PathBuf>, mine: &[usize], files: &[FileSwap], read: Read) -> Serving {
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
fn pick_host(candidates: &[String], serving: &Serving) -> Option<String> {
    candidates
        .iter()
        .find(|h| covers(&serving.sans, h) && covers(&serving.old_sans, h))
        .or_else(|| candidates.iter().find(|h| covers(&serving.sans, h)))
        .cloned()
}

fn url_parts(url: &str) -> Option<(String, String, u16)> {
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

fn url(scheme: &str, host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}")
    } else {
        format!("{scheme}://{host}:{port}")
    }
}

/// A client identity that `read` shows usable for TLS client auth: a certificate with the
/// client-auth usage (or none) and a key file next to it.
fn usable_identity(cert: &Path, key: &Path, read: Read) -> bool {
    let Some(c) = read(cert).and_then(|b| first_cert(&b)) else {
        return false;
    };
    let client = c.ext_key_usage.is_empty() || c.ext_key_usage.iter().any(|u| u == "client auth");
    client && read(key).is_some()
}

/// The gates of one step (and why there are none, when there cannot be any).
#[allow(clippy::too_many_arguments)]
fn gates_for(
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
            return Err(Error::Usage(format!(
                "--health-cert {name} and --health-key {name} go together: give both"
            )))
        }
    }
    Ok((gates, note))
}

/// The certificate a profile component most likely serves: a server role among its files.
/// The certificate a profile component most likely serves: a serving role among its files
/// (a client certificate such as the controller-manager's is not served).
fn main_cert(mine: &[usize], files: &[FileSwap]) -> Option<usize> {
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

fn profile_gates(cand: &Cand, mine: &[usize], files: &[FileSwap]) -> Result<Vec<Gate>> {
    let mut out = Vec::new();
    for h in &cand.health {
        if h.url.contains('{') {
            return Err(Error::Usage(format!(
                "cannot resolve the health endpoint `{}` of {} (no --advertise-address in its configuration); pass --health {}=https://ADDRESS:PORT/PATH",
                h.url, cand.name, cand.name
            )));
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

type Derived = (Vec<Gate>, Option<String>, Option<PathBuf>);

/// Gates from what the node says about the component.
fn derive(
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

/// The client certificate a probe of etcd presents (etcd runs with --client-cert-auth): the
/// first usable of kubeadm's healthcheck-client beside the trusted CA, the apiserver's
/// `--etcd-certfile` on this node, and etcd's own serving then peer certificate.
fn etcd_identity(
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
) -> std::result::Result<super::membership::Access, String> {
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
    let hint = "pass --health etcd=https://HOST:PORT --health-ca etcd=FILE --health-cert etcd=FILE --health-key etcd=FILE, or --no-etcd-membership";
    let mut origin = Vec::new();
    let bootstrap = if let Some((_, u)) = ov.health.iter().rev().find(|(n, _)| n == "etcd") {
        let (scheme, target) = super::plan::parse_url(u)?;
        if scheme != "https" {
            return Err(format!(
                "--health etcd={u}: the membership steps speak to etcd over https only"
            ));
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
            return Err(format!(
                "etcd listens for clients on no https URL ({}); {hint}",
                c.origin("listen-client-urls")
            ));
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
            return Err(format!(
                "this node runs no etcd, and the apiserver's --etcd-servers ({servers}) names no https URL; {hint}"
            ));
        };
        origin.push(format!("endpoint from {}", a.origin("etcd-servers")));
        let (_, target) = super::plan::parse_url(first)?;
        format!("https://{}", target.authority())
    } else {
        return Err(format!(
            "this node runs no etcd and no kube-apiserver with --etcd-servers, so nothing says how to reach etcd; {hint}"
        ));
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
        return Err(format!(
            "no CA to verify etcd with: etcd has no --trusted-ca-file and no apiserver names --etcd-cafile; {hint}"
        ));
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
        return Err(format!(
            "etcd requires client certificates and none usable was found on this node (kubeadm's healthcheck-client beside the trusted CA, the apiserver's --etcd-certfile, etcd's own certificate with client auth); {hint}"
        ));
    }
    Ok(super::membership::Access {
        bootstrap,
        ca,
        client,
        origin: origin.join(", "),
    })
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
