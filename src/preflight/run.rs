//! `preflight::run`: the whole of `certs preflight` but its rendering — scan the node's PKI,
//! read the configuration files that name masters and the live answers (the VIP, endpoints,
//! etcd), run every check, and return them as a [`Report`]. The command line is resolved into a
//! [`Config`] first (`cli::config::preflight`), with the clock and the environment read once.

use std::path::{Path, PathBuf};

use crate::edit::config::same_host;
use crate::endpoint::Target;
use crate::error::{Error, Result};
use crate::pki::inventory::Inventory;
use crate::pki::Role;
use crate::preflight::{
    checks, etcd, names, Check, ConfigFile, Status, CONFIG_LOCATIONS, KUBECONFIG_LOCATIONS,
};
use crate::sys::tls::{self, ProbeOptions, Trust};

/// What a preflight checks, resolved from its command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Files or directories to read; empty: the standard locations under `root` and the
    /// administrators' kubeconfigs.
    pub paths: Vec<PathBuf>,
    /// The node's `/`.
    pub root: PathBuf,
    /// `$HOME`, whose `.kube/config` is read too when no path is given.
    pub home: Option<PathBuf>,
    /// Seconds since the epoch.
    pub now: i64,
    /// Seconds: a certificate with less left than this is `expiring`.
    pub window: i64,
    /// Bound on each live probe.
    pub timeout: std::time::Duration,
    /// The VIP (host, port) the apiservers will be reached at.
    pub vip: Option<(String, u16)>,
    /// No live probe of the VIP.
    pub offline: bool,
    /// Masters to retire and to keep, as given (addresses or node names).
    pub retire: Vec<String>,
    pub keep: Vec<String>,
    /// `--endpoint` URLs: as given (for the messages), and parsed.
    pub endpoints: Vec<(String, Target)>,
    /// `--etcd` members to ask.
    pub etcd: Vec<Target>,
    /// The etcd CA, and the client certificate and key; else found among the scanned files.
    pub etcd_ca: Option<PathBuf>,
    pub etcd_client: Option<(PathBuf, PathBuf)>,
    /// The rollout state directory whose files are checked.
    pub state_dir: PathBuf,
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether a check failed (the command exits 1).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

/// Runs every check `c` asks for. Errors are what stops a preflight before it can check
/// (nothing to scan, --retire and --keep naming one master, an unreadable etcd client file).
pub fn run(c: &Config) -> Result<Report> {
    let now = c.now;
    let window = c.window;
    let timeout = c.timeout;
    let (vip, vip_port) = match &c.vip {
        Some((host, port)) => (Some(host.as_str()), *port),
        None => (None, 6443),
    };
    let paths = scan_paths(&c.paths, &c.root, c.home.as_deref())?;
    let inv = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
        paths: &paths,
        root: &c.root,
        now,
        warn_within: window,
    })?;
    let (components, mut unread) = crate::sys::node::read_reporting(&c.root);
    let hosts_path = crate::sys::fs::under_root(&c.root, Path::new("/etc/hosts"));
    let hosts =
        crate::sys::fs::read_opt(&hosts_path).map(|b| String::from_utf8_lossy(&b).into_owned());
    let hosts_name = hosts_path.display().to_string();
    let aliases = names::aliases(
        &components,
        &inv,
        hosts.as_deref().map(|t| (hosts_name.as_str(), t)),
    );
    let expand = |given: &[String]| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for who in given {
            for w in names::expand(who, &aliases) {
                if !out.contains(&w) {
                    out.push(w);
                }
            }
        }
        out
    };
    let retire = expand(&c.retire);
    let keep = expand(&c.keep);
    for k in &c.keep {
        let mine = names::expand(k, &aliases);
        if let Some(both) = mine.iter().find(|w| retire.iter().any(|r| same_host(r, w))) {
            return Err(Error::Usage(format!(
                "expected --retire and --keep to name different masters, found {both} in both (--keep {k})"
            )));
        }
    }
    let keep_cover: Vec<String> = c
        .keep
        .iter()
        .flat_map(|k| {
            let all = names::expand(k, &aliases);
            let addresses: Vec<String> = all
                .iter()
                .filter(|w| w.parse::<std::net::IpAddr>().is_ok())
                .cloned()
                .collect();
            if addresses.is_empty() {
                vec![k.clone()]
            } else {
                addresses
            }
        })
        .collect();
    let own: Vec<String> = components
        .iter()
        .filter(|c| c.kind == "kube-apiserver")
        .flat_map(|c| [c.get("advertise-address"), c.get("bind-address")])
        .flatten()
        .filter(|a| {
            a.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| !ip.is_unspecified())
        })
        .map(str::to_string)
        .collect();
    let configs = read_configs(&c.root, &components, &mut unread);
    let change = checks::Change {
        vip,
        vip_port,
        retire: &retire,
        keep: &keep,
        keep_cover: &keep_cover,
        own: &own,
        window,
        now,
    };

    let mut all: Vec<Check> = Vec::new();
    all.extend(checks::ca(&inv, now, window));
    if let Some(v) = vip {
        all.extend(checks::vip(&inv, v));
        if !c.offline {
            all.push(vip_endpoint(&inv, v, vip_port, timeout));
        }
    }
    for (url, target) in &c.endpoints {
        all.push(endpoint(&inv, url, target, timeout));
    }
    all.extend(names::report("--retire", &c.retire, &aliases));
    all.extend(names::report("--keep", &c.keep, &aliases));
    if !c.retire.is_empty() || !c.keep.is_empty() {
        all.extend(checks::retirement(&inv, &change));
    }
    all.extend(checks::clients(&inv, &configs, &change));
    // A config file that could not be read or parsed is never skipped silently: when the
    // retirement checks needed it, they cannot pass.
    for u in &unread {
        let message = format!(
            "{}: {}; the masters it names cannot be checked",
            u.path.display(),
            u.why
        );
        let fix = Some(format!(
            "check {} by hand, or make it readable text",
            u.path.display()
        ));
        all.push(if retire.is_empty() {
            Check::warn("config-unreadable", message, fix)
        } else {
            Check::fail("config-unreadable", message, fix)
        });
    }
    if !c.etcd.is_empty() {
        let opts = etcd_options(&inv, c)?;
        all.extend(etcd::checks(&etcd::Gateway { opts }, &c.etcd, &retire));
    }
    all.extend(checks::files(&inv, &c.state_dir));
    all.extend(checks::expiry(&inv, &change));
    Ok(Report { checks: all })
}

/// What to scan: the paths given, else the PKI's standard locations and the administrators'
/// kubeconfigs (`/root/.kube/config`, `$HOME/.kube/config`) that exist under `root`.
fn scan_paths(given: &[PathBuf], root: &Path, home: Option<&Path>) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let mut kubeconfigs: Vec<PathBuf> = KUBECONFIG_LOCATIONS.iter().map(PathBuf::from).collect();
    if let Some(home) = home.filter(|h| h.is_absolute()) {
        kubeconfigs.push(home.join(".kube/config"));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for p in kubeconfigs {
        let p = crate::sys::fs::under_root(root, &p);
        if !crate::sys::fs::is_absent(&p) && !out.contains(&p) {
            out.push(p);
        }
    }
    match crate::pki::scan::resolve_paths(&[], root) {
        Ok(standard) => Ok(standard.into_iter().chain(out).collect()),
        Err(_) if !out.is_empty() => Ok(out),
        Err(e) => Err(e),
    }
}

/// The config files under `root` that may name masters (bounded in size, decoded leniently:
/// [`crate::node::lossy_text`]): the standard locations, the manifest or unit each component
/// was read from, and the files nginx `include`s. What cannot be read goes into `unread`.
fn read_configs(
    root: &Path,
    components: &[crate::node::Component],
    unread: &mut Vec<crate::sys::node::Unread>,
) -> Vec<ConfigFile> {
    let mut paths: Vec<PathBuf> = CONFIG_LOCATIONS
        .iter()
        .map(|p| crate::sys::fs::under_root(root, Path::new(p)))
        .filter(|p| !crate::sys::fs::is_absent(p))
        .collect();
    for c in components {
        if !paths.iter().any(|p| c.source.starts_with(p)) {
            paths.push(c.source.clone());
        }
    }
    let mut out: Vec<ConfigFile> = Vec::new();
    let mut walked_roots: Vec<PathBuf> = Vec::new();
    while !paths.is_empty() {
        let batch: Vec<PathBuf> = std::mem::take(&mut paths)
            .into_iter()
            .filter(|p| !walked_roots.contains(p))
            .collect();
        walked_roots.extend(batch.iter().cloned());
        let walked = match crate::sys::fs::walk(&batch) {
            Ok(w) => w,
            Err(e) => {
                unread.push(crate::sys::node::Unread {
                    path: batch.first().cloned().unwrap_or_default(),
                    why: e.to_string(),
                });
                continue;
            }
        };
        for w in walked {
            let (path, bytes) = match w {
                crate::sys::fs::Walked::File { path, bytes } => (path, bytes),
                crate::sys::fs::Walked::Problem { path, message, .. } => {
                    if !unread.iter().any(|u| u.path == path) {
                        unread.push(crate::sys::node::Unread { path, why: message });
                    }
                    continue;
                }
            };
            // `multi-user.target.wants/etcd.service` is a link to a unit already read.
            let wants = path.components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                c.ends_with(".wants") || c.ends_with(".requires")
            });
            if wants || out.iter().any(|f| f.path == path) {
                continue;
            }
            let text = crate::node::lossy_text(&bytes);
            for inc in crate::edit::proxy::includes(&text) {
                for p in include_paths(root, &path, &inc) {
                    if !walked_roots.contains(&p) && !paths.contains(&p) {
                        paths.push(p);
                    }
                }
            }
            out.push(ConfigFile { path, text });
        }
    }
    out
}

/// The files an nginx `include` names, under `root`: relative to the including file's
/// directory (nginx's prefix is where its config is), a `*` in the last component matched.
fn include_paths(root: &Path, from: &Path, pattern: &str) -> Vec<PathBuf> {
    if Path::new(pattern)
        .components()
        .any(|c| c == std::path::Component::ParentDir)
    {
        return vec![];
    }
    let node_path = if Path::new(pattern).is_absolute() {
        crate::sys::fs::under_root(root, Path::new(pattern))
    } else {
        from.parent().unwrap_or(Path::new("/")).join(pattern)
    };
    let name = node_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((pre, post)) = name.split_once('*') else {
        return vec![node_path];
    };
    let dir = node_path.parent().unwrap_or(Path::new("/"));
    let mut found: Vec<PathBuf> = crate::sys::fs::list_dir(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p.file_name().map(|n| n.to_string_lossy()).is_some_and(|n| {
                n.starts_with(pre) && n.ends_with(post) && n.len() >= pre.len() + post.len()
            })
        })
        .collect();
    found.sort();
    found
}

/// The CA that signed the apiserver certificates found (the cluster CA).
fn cluster_ca(inv: &Inventory) -> Option<Vec<u8>> {
    inv.certificates
        .iter()
        .filter(|c| c.role == Role::Apiserver)
        .find_map(|c| c.signed_by)
        .or_else(|| inv.certificates.iter().position(|c| c.role == Role::Ca))
        .map(|i| inv.certificates[i].info.der.clone())
}

fn probe_check(
    id: &'static str,
    url: &str,
    target: &Target,
    roots: Vec<Vec<u8>>,
    timeout: std::time::Duration,
    fix: Option<String>,
) -> Check {
    let opts = ProbeOptions {
        roots: Some(
            roots
                .into_iter()
                .map(rustls::pki_types::CertificateDer::from)
                .collect(),
        ),
        timeout,
        ..Default::default()
    };
    match tls::probe(target, &opts) {
        Err(e) => Check::warn(id, format!("nothing usable answers on {url}: {e}"), None),
        Ok(p) => {
            let served = p
                .chain
                .first()
                .and_then(|d| crate::pki::cert::CertInfo::from_der(d).ok())
                .map(|c| c.sans.all().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            match p.trust {
                Trust::Verified => Check::pass(id, format!("{url} serves a certificate from the cluster CA that covers it")),
                Trust::NameNotCovered { name, .. } => Check::fail(
                    id,
                    format!("{url} serves a certificate valid for {served}, not {name}"),
                    fix,
                ),
                Trust::Untrusted { reason } => Check::fail(id, format!("{url} serves a certificate that does not chain to the cluster CA ({reason}); it is valid for {served}"), None),
                Trust::NotChecked => Check::warn(id, format!("{url}: not verified"), None),
            }
        }
    }
}

fn vip_endpoint(inv: &Inventory, vip: &str, port: u16, timeout: std::time::Duration) -> Check {
    let url = if vip.contains(':') {
        format!("https://[{vip}]:{port}")
    } else {
        format!("https://{vip}:{port}")
    };
    let Some(ca) = cluster_ca(inv) else {
        return Check::warn(
            "vip-endpoint",
            "no cluster CA found to verify the VIP's certificate against",
            None,
        );
    };
    let target = match url.parse::<Target>() {
        Ok(t) => t,
        Err(e) => return Check::fail("vip-endpoint", e.to_string(), None),
    };
    let fix = inv
        .certificates
        .iter()
        .find(|c| c.role == Role::Apiserver && c.location.embedded.is_none())
        .map(|c| {
            format!(
                "certs reissue {} --add-san {vip}   # on every master, then certs rollout apply",
                c.location.path.display()
            )
        });
    probe_check("vip-endpoint", &url, &target, vec![ca], timeout, fix)
}

fn endpoint(inv: &Inventory, url: &str, target: &Target, timeout: std::time::Duration) -> Check {
    let roots: Vec<Vec<u8>> = inv
        .certificates
        .iter()
        .filter(|c| c.role.is_ca())
        .map(|c| c.info.der.clone())
        .collect();
    if roots.is_empty() {
        return Check::warn(
            "endpoint-tls",
            format!("no CA found to verify {url} against"),
            None,
        );
    }
    probe_check("endpoint-tls", url, target, roots, timeout, None)
}

/// Roots and client identity for etcd: given, or found in the inventory.
fn etcd_options(inv: &Inventory, c: &Config) -> Result<ProbeOptions> {
    let timeout = c.timeout;
    let read = |p: &PathBuf| crate::sys::fs::read_file(p);
    let ca_der: Vec<Vec<u8>> = match &c.etcd_ca {
        Some(p) => pem::parse_many(read(p)?)
            .map_err(|e| Error::Input {
                path: p.clone(),
                expected: "PEM CA certificates".into(),
                found: e.to_string(),
            })?
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| b.into_contents())
            .collect(),
        None => inv
            .certificates
            .iter()
            .filter(|c| {
                c.role == Role::EtcdCa || (c.role == Role::Ca && c.location.embedded.is_none())
            })
            .map(|c| c.info.der.clone())
            .collect(),
    };
    let (cert, key) = match &c.etcd_client {
        Some((cert, key)) => (cert.clone(), key.clone()),
        _ => {
            let preferred = [
                Role::ApiserverEtcdClient,
                Role::EtcdClient,
                Role::EtcdServer,
            ];
            let found = preferred.iter().find_map(|r| {
                inv.certificates
                    .iter()
                    .filter(|c| {
                        c.role == *r
                            && c.location.embedded.is_none()
                            && c.info.ext_key_usage.iter().any(|u| u == "client auth")
                    })
                    .find_map(|c| {
                        c.key
                            .map(|k| (c.location.path.clone(), inv.keys[k].location.path.clone()))
                    })
            });
            found.ok_or_else(|| Error::Usage("expected an etcd client certificate (--etcd-cert/--etcd-key), found none among the scanned files".into()))?
        }
    };
    let input = |path: &PathBuf, expected: &str, found: String| Error::Input {
        path: path.clone(),
        expected: expected.into(),
        found,
    };
    let certs = tls::certs_from_pem(&read(&cert)?)
        .map_err(|e| input(&cert, "a PEM client certificate", e.to_string()))?;
    let key_der = tls::key_from_pem(&read(&key)?)
        .map_err(|e| input(&key, "its private key", e.to_string()))?;
    Ok(ProbeOptions {
        roots: Some(
            ca_der
                .into_iter()
                .map(rustls::pki_types::CertificateDer::from)
                .collect(),
        ),
        timeout,
        client_identity: Some((certs, key_der)),
        ..Default::default()
    })
}
