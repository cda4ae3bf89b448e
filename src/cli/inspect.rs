//! `certs inspect`: an adapter over [`crate::pki::scan::scan`] and [`crate::sys::tls::probe`].

use super::config::InspectConfig;
use super::render::{self, Endpoint};
use crate::error::{exit, Error, Result};
use crate::pki::cert::CertInfo;
use crate::pki::inventory::Inventory;
use crate::pki::scan::{scan, ScanRequest};
use crate::sys::tls::{self, ProbeOptions, Trust};

pub fn run(c: &InspectConfig) -> Result<u8> {
    let inventory = if c.paths.is_empty() && !c.endpoints.is_empty() {
        Inventory {
            now: c.now,
            warn_within: c.warn_within,
            ..Default::default()
        }
    } else {
        scan(&ScanRequest {
            paths: &c.paths,
            root: &c.root,
            now: c.now,
            warn_within: c.warn_within,
        })?
    };
    let endpoints = probe_all(c)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    render::inspect(&mut out, &inventory, &endpoints, c).map_err(Error::Output)?;
    std::io::Write::flush(&mut out).map_err(Error::Output)?;
    let endpoint_failed = endpoints
        .iter()
        .any(|e| !matches!(e.trust, Trust::Verified | Trust::NotChecked));
    let problem = endpoint_failed || (c.monitor && inventory.has_problems());
    Ok(if problem { exit::PROBLEM } else { exit::OK })
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
                    found: e,
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
        found,
    })
}
