//! `certs inspect`: an adapter over [`crate::pki::scan::scan`] and [`crate::sys::tls::probe`].

use super::args::Output;
use super::config::InspectConfig;
use super::outcome::Outcome;
use super::progress::Progress;
use super::render::{self, Endpoint};
use crate::error::{Error, Result};
use crate::pki::cert::CertInfo;
use crate::pki::inventory::Inventory;
use crate::pki::scan::{scan, ScanRequest};
use crate::sys::tls::{self, ProbeOptions, Trust};

pub fn run(c: &InspectConfig) -> Result<Outcome> {
    check_report_options(c)?;
    // A spinner on stderr when it is a terminal and this takes a while; gone before output.
    let progress = Progress::start(format!("inspecting {}", what(c)));
    let inventory = if c.paths.is_empty() && !c.endpoints.is_empty() {
        Inventory {
            now: c.now,
            warn_within: c.warn_within,
            ..Default::default()
        }
    } else {
        // One large structure built on all cores, then the process exits.
        crate::sys::alloc::scan_mode();
        scan(&ScanRequest {
            paths: &c.paths,
            root: &c.root,
            now: c.now,
            warn_within: c.warn_within,
        })?
    };
    if !c.endpoints.is_empty() {
        let urls: Vec<String> = c.endpoints.iter().map(|e| e.to_string()).collect();
        progress.say(format!("probing {}", urls.join(", ")));
    }
    let endpoints = probe_all(c)?;
    drop(progress);
    if let Some(path) = &c.textfile {
        let mut text = Vec::new();
        write_report(&mut text, &inventory, c).map_err(Error::Output)?;
        let mode = crate::sys::fs::mode(path).unwrap_or(0o644);
        crate::sys::fs::write_atomic(path, &text, mode)?;
    } else {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
        if is_report(c.output) {
            write_report(&mut out, &inventory, c)
        } else {
            render::inspect(
                &mut out,
                &inventory,
                &endpoints,
                c,
                crate::sys::term::stdout_columns(),
            )
        }
        .map_err(Error::Output)?;
        std::io::Write::flush(&mut out).map_err(Error::Output)?;
    }
    let endpoint_failed = endpoints
        .iter()
        .any(|e| !matches!(e.trust, Trust::Verified | Trust::NotChecked));
    let problem = endpoint_failed || (c.monitor && inventory.has_problems());
    // The process exits next: freeing a fleet's inventory entry by entry (tens of thousands of
    // small allocations) took a tenth of inspect's time, and the OS takes it back at once.
    std::mem::forget(inventory);
    Ok(if problem {
        Outcome::Problem
    } else {
        Outcome::Clean
    })
}

/// What an inspect reads, for the progress line.
fn what(c: &InspectConfig) -> String {
    let paths: Vec<String> = c.paths.iter().map(|p| p.display().to_string()).collect();
    let urls = c.endpoints.iter().map(|e| e.to_string());
    let all: Vec<String> = paths.into_iter().chain(urls).collect();
    match all.len() {
        0 => format!("the standard locations under {}", c.root.display()),
        1..=3 => all.join(", "),
        n => format!("{}, … ({n} targets)", all[..2].join(", ")),
    }
}

/// Outputs in another tool's format (kubeadm's, x509-certificate-exporter's): they describe the
/// files of a node, never a live endpoint.
fn is_report(output: Output) -> bool {
    matches!(
        output,
        Output::Kubeadm | Output::KubeadmJson | Output::Prometheus
    )
}

fn check_report_options(c: &InspectConfig) -> Result<()> {
    let name = |o: Output| {
        clap::ValueEnum::to_possible_value(&o)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    };
    if c.textfile.is_some() && c.output != Output::Prometheus {
        return Err(Error::Usage(format!(
            "--textfile: expected -o prometheus (node_exporter's textfile collector reads the Prometheus text format), found -o {}",
            name(c.output)
        )));
    }
    if is_report(c.output) && !c.endpoints.is_empty() {
        return Err(Error::Usage(format!(
            "-o {}: expected files or --root (it reports a node's certificate files), found the endpoint {}",
            name(c.output),
            c.endpoints[0]
        )));
    }
    Ok(())
}

/// `-o kubeadm`, `-o kubeadm-json`, `-o prometheus`.
pub fn write_report(
    out: &mut dyn std::io::Write,
    inv: &Inventory,
    c: &InspectConfig,
) -> std::io::Result<()> {
    use crate::report::{kubeadm, prometheus};
    let exists = |p: &std::path::Path| !crate::sys::fs::is_absent(p);
    match c.output {
        Output::Kubeadm | Output::KubeadmJson => {
            let mut layout = kubeadm::Layout::find(inv, &c.root);
            // A static pod for etcd means kubeadm runs it stacked, and tracks its certificates.
            layout.local_etcd |= exists(&layout.kubernetes_dir.join("manifests/etcd.yaml"));
            let info = kubeadm::expiration(inv, &layout, &exists);
            if c.output == Output::Kubeadm {
                kubeadm::write_table(out, &info)
            } else {
                kubeadm::write_json(out, &info)
            }
        }
        Output::Prometheus => prometheus::write(out, inv, &c.root),
        // Not reports: render::inspect writes those.
        Output::Table | Output::Wide | Output::Json => Ok(()),
    }
}

fn probe_all(c: &InspectConfig) -> Result<Vec<Endpoint>> {
    if c.endpoints.is_empty() {
        return Ok(Vec::new());
    }
    let roots = match &c.ca {
        Some(path) => Some(load_roots(path)?),
        None => None,
    };
    let opts = ProbeOptions {
        roots,
        insecure: c.insecure,
        timeout: c.timeout,
        client_identity: None,
        server_name: None,
    };
    c.endpoints
        .iter()
        .map(|target| {
            let probe = tls::probe(target, &opts)?;
            let chain = probe
                .chain
                .iter()
                .map(|der| CertInfo::from_der(der))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::Input {
                    path: target.to_string().into(),
                    expected: "X.509 certificates in the served chain".into(),
                    found: e.to_string(),
                })?;
            Ok(Endpoint {
                url: target.to_string(),
                trust: probe.trust,
                handshake_error: probe.handshake_error,
                chain,
            })
        })
        .collect()
}

fn load_roots(path: &std::path::Path) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let bytes = crate::sys::fs::read_file(path)?;
    tls::certs_from_pem(&bytes).map_err(|found| Error::Input {
        path: path.to_path_buf(),
        expected: "PEM CA certificates".into(),
        found: found.to_string(),
    })
}
