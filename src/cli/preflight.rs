//! `certs preflight`: gathers the inventory, the config files that name masters and the live
//! answers, runs [`crate::preflight`]'s checks, and renders them.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{PlanOutput, PreflightArgs};
use super::config::{parse_duration, parse_time};
use super::render;
use crate::edit::config::same_host;
use crate::endpoint::Target;
use crate::error::{exit, Error, Result};
use crate::pki::inventory::Inventory;
use crate::pki::Role;
use crate::preflight::{
    checks, etcd, names, Check, ConfigFile, Status, CONFIG_LOCATIONS, KUBECONFIG_LOCATIONS,
};
use crate::sys::tls::{self, ProbeOptions, Trust};

pub fn run(a: &PreflightArgs) -> Result<u8> {
    let now = match &a.now {
        Some(t) => parse_time(t)?,
        None => crate::sys::clock::now(),
    };
    let window = parse_duration(&a.window)?.as_secs() as i64;
    let timeout = parse_duration(&a.timeout)?;
    let (vip_host, vip_port) = match &a.vip {
        Some(v) => split_host_port(v)?,
        None => (String::new(), 6443),
    };
    let vip = a.vip.as_ref().map(|_| vip_host.as_str());
    let paths = scan_paths(&a.paths, &a.root)?;
    let inv = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
        paths: &paths,
        root: &a.root,
        now,
        warn_within: window,
    })?;
    let (components, mut unread) = crate::sys::node::read_reporting(&a.root);
    let hosts_path = crate::sys::fs::under_root(&a.root, Path::new("/etc/hosts"));
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
    let retire = expand(&a.retire);
    let keep = expand(&a.keep);
    for k in &a.keep {
        let mine = names::expand(k, &aliases);
        if let Some(both) = mine.iter().find(|w| retire.iter().any(|r| same_host(r, w))) {
            return Err(Error::Usage(format!(
                "expected --retire and --keep to name different masters, found {both} in both (--keep {k})"
            )));
        }
    }
    let keep_cover: Vec<String> = a
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
    let configs = read_configs(&a.root, &components, &mut unread);
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
        if !a.offline {
            all.push(vip_endpoint(&inv, v, vip_port, timeout));
        }
    }
    for url in &a.endpoint {
        all.push(endpoint(&inv, url, timeout)?);
    }
    all.extend(names::report("--retire", &a.retire, &aliases));
    all.extend(names::report("--keep", &a.keep, &aliases));
    if !a.retire.is_empty() || !a.keep.is_empty() {
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
    if !a.etcd.is_empty() {
        let targets = a
            .etcd
            .iter()
            .map(|u| u.parse::<Target>())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let opts = etcd_options(&inv, a, timeout)?;
        all.extend(etcd::checks(&etcd::Gateway { opts }, &targets, &retire));
    }
    all.extend(checks::files(&inv, &a.state_dir));
    all.extend(checks::expiry(&inv, &change));

    render(&all, a.output)?;
    Ok(if all.iter().any(|c| c.status == Status::Fail) {
        exit::PROBLEM
    } else {
        exit::OK
    })
}

fn split_host_port(v: &str) -> Result<(String, u16)> {
    let bad = || Error::Usage(format!("--vip: expected ADDR or ADDR:PORT, found `{v}`"));
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Ok((v.to_string(), 6443));
    }
    match v.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().map_err(|_| bad())?,
        )),
        None if !v.is_empty() => Ok((v.to_string(), 6443)),
        None => Err(bad()),
    }
}

/// What to scan: the paths given, else the PKI's standard locations and the administrators'
/// kubeconfigs (`/root/.kube/config`, `$HOME/.kube/config`) that exist under `root`.
fn scan_paths(given: &[PathBuf], root: &Path) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let mut kubeconfigs: Vec<PathBuf> = KUBECONFIG_LOCATIONS.iter().map(PathBuf::from).collect();
    if let Some(home) = std::env::var_os("HOME").filter(|h| Path::new(h).is_absolute()) {
        kubeconfigs.push(Path::new(&home).join(".kube/config"));
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

fn endpoint(inv: &Inventory, url: &str, timeout: std::time::Duration) -> Result<Check> {
    let target: Target = url.parse()?;
    let roots: Vec<Vec<u8>> = inv
        .certificates
        .iter()
        .filter(|c| c.role.is_ca())
        .map(|c| c.info.der.clone())
        .collect();
    if roots.is_empty() {
        return Ok(Check::warn(
            "endpoint-tls",
            format!("no CA found to verify {url} against"),
            None,
        ));
    }
    Ok(probe_check(
        "endpoint-tls",
        url,
        &target,
        roots,
        timeout,
        None,
    ))
}

/// Roots and client identity for etcd: given, or found in the inventory.
fn etcd_options(
    inv: &Inventory,
    a: &PreflightArgs,
    timeout: std::time::Duration,
) -> Result<ProbeOptions> {
    let read = |p: &PathBuf| crate::sys::fs::read_file(p);
    let ca_der: Vec<Vec<u8>> = match &a.etcd_ca {
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
    let (cert, key) = match (&a.etcd_cert, &a.etcd_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
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

fn render(all: &[Check], output: PlanOutput) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        PlanOutput::Json => {
            let v = serde_json::json!({ "schema": "certs.preflight/v1", "checks": all });
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| Error::Usage(e.to_string()))?
            )
            .map_err(Error::Output)
        }
        PlanOutput::Text => {
            // Fitted to the terminal (or COLUMNS): messages and fixes continue under themselves,
            // at column 33, or at 6 when that leaves less than 40 columns.
            let width = crate::sys::term::stdout_columns();
            let indent = match width {
                Some(w) if w < 33 + 40 => 6,
                _ => 33,
            };
            for c in all {
                let status = match c.status {
                    Status::Pass => "pass",
                    Status::Warn => "WARN",
                    Status::Fail => "FAIL",
                };
                let head = format!("{status:<5} {:<26} ", c.id);
                let mut lines = render::hanging(&head, &c.message, indent, width);
                if let Some(fix) = &c.fix {
                    let head = format!("{:indent$}fix: ", "");
                    lines.extend(render::hanging(&head, fix, indent + 5, width));
                }
                for line in lines {
                    writeln!(out, "{line}").map_err(Error::Output)?;
                }
            }
            let fails = all.iter().filter(|c| c.status == Status::Fail).count();
            let warns = all.iter().filter(|c| c.status == Status::Warn).count();
            writeln!(
                out,
                "{} checks: {fails} failed, {warns} warnings",
                all.len()
            )
            .map_err(Error::Output)
        }
    }
}
