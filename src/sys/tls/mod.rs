//! TLS probes of live endpoints through rustls.
//!
//! This module owns every network connection the tool makes:
//! - [`probe`]: connect to `https://host:port`, capture the certificate chain exactly as served
//!   (leaf first) and say whether it verifies against the given CA(s) and covers the server name;
//! - [`https_get`] / [`https_request`]: a minimal HTTP/1.1 exchange over the same, verified
//!   connection, for health gates (etcd `/health` with a client certificate, apiserver `/readyz`,
//!   the etcd v3 gateway);
//! - [`https_stream`]: the same request, its body read as it arrives rather than into memory
//!   (an etcd snapshot through the gateway).
//!
//! Rules it keeps:
//! - the chain is captured before the verdict, so a rejected or aborted handshake still tells
//!   what the server presented;
//! - one [`ProbeOptions::timeout`] budget bounds a whole call (name resolution, connect,
//!   handshake, request and response): nothing here can hang; a streamed body is bounded by
//!   progress instead (each read within [`StreamLimits::idle`]) and by its size;
//! - no global crypto provider is installed, every configuration names aws-lc-rs explicitly;
//! - private keys are never printed (the `Debug` of [`ProbeOptions`] leaves them out).
//!
//! Its parts: `session` (configuration, handshake, its outcome), `verifier` (the rustls hooks
//! that capture the chain and the client-certificate request), `trust` (the verdict in words),
//! `net` (resolution, connection, deadlines) and `request` (HTTP over a session;
//! the framing is [`crate::sys::http`]'s). Endpoints are parsed in [`crate::endpoint`], PEM
//! files read in [`crate::pki::pem_bundle`].

mod net;
mod request;
mod session;
#[cfg(test)]
mod test_server;
mod trust;
mod verifier;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub use crate::endpoint::Target;
/// The PEM readers for roots and client identities, where callers have always found them.
pub use crate::pki::pem_bundle::{certs_from_pem, key_from_pem};
pub use crate::sys::http::MAX_BODY;
pub use request::{
    http_get, https_get, https_request, https_stream, StreamBody, StreamLimits, StreamedResponse,
};
pub use trust::Trust;

use session::establish;

/// How to probe.
pub struct ProbeOptions {
    /// CA certificate(s) to verify against. `None` (or an empty list) means no trust anchors
    /// were given: the probe then refuses to run unless `insecure` is set.
    pub roots: Option<Vec<CertificateDer<'static>>>,
    /// Only when the user explicitly asked: capture the chain without verifying it.
    pub insecure: bool,
    /// Budget for one whole call: name resolution, connect, handshake, request and response.
    pub timeout: Duration,
    /// Client certificate chain (leaf first) and its key, for endpoints that demand one (etcd).
    pub client_identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// Name or IP to verify the certificate against and to send as SNI; default: target host.
    pub server_name: Option<String>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            roots: None,
            insecure: false,
            timeout: Duration::from_secs(5),
            client_identity: None,
            server_name: None,
        }
    }
}

impl Clone for ProbeOptions {
    fn clone(&self) -> Self {
        ProbeOptions {
            roots: self.roots.clone(),
            insecure: self.insecure,
            timeout: self.timeout,
            client_identity: self
                .client_identity
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
            server_name: self.server_name.clone(),
        }
    }
}

impl fmt::Debug for ProbeOptions {
    // Hand-written so that the private key can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeOptions")
            .field("roots", &self.roots.as_ref().map(|r| r.len()))
            .field("insecure", &self.insecure)
            .field("timeout", &self.timeout)
            .field(
                "client_identity",
                &self
                    .client_identity
                    .as_ref()
                    .map(|(chain, _)| format!("{} certificate(s) and a private key", chain.len())),
            )
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub target: Target,
    /// DER certificates as served, leaf first. Never empty: a server that presents no
    /// certificate yields [`ProbeError::NoCertificate`] instead.
    pub chain: Vec<Vec<u8>>,
    pub trust: Trust,
    /// Set when the handshake failed after the server presented its certificate for another
    /// reason than our verdict on it, e.g. the server demanded a client certificate.
    pub handshake_error: Option<String>,
}

impl Probe {
    /// The served leaf certificate (DER).
    pub fn leaf(&self) -> Option<&[u8]> {
        self.chain.first().map(Vec::as_slice)
    }

    /// Whether the served leaf is exactly this certificate (DER bytes compared).
    pub fn serves_leaf(&self, der: &[u8]) -> bool {
        self.leaf() == Some(der)
    }
}

/// An HTTP response read over a verified (or explicitly unchecked) connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// At most [`MAX_BODY`] bytes, chunked transfer coding already removed.
    pub body: Vec<u8>,
    /// The connection's facts: served chain and verdict.
    pub probe: Probe,
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "cannot verify {target}: no CA certificate was given to verify the served chain against; \
         give the CA (bundle) that should have issued it, or explicitly ask not to verify (insecure)"
    )]
    MissingRoots { target: Target },

    #[error("cannot probe {target}: {detail}")]
    InvalidOptions { target: Target, detail: String },

    #[error("cannot resolve the host of {target}: {detail}")]
    Resolve { target: Target, detail: String },

    #[error("cannot connect to {target} (address {addr}): {source}")]
    Connect {
        target: Target,
        addr: SocketAddr,
        source: io::Error,
    },

    #[error("{target} did not answer within {after:?} while {what}")]
    Timeout {
        target: Target,
        what: String,
        after: Duration,
    },

    #[error("expected a TLS server presenting a certificate at {target}, found: {detail}")]
    NoCertificate { target: Target, detail: String },

    #[error(
        "TLS handshake with {} failed after the server presented its certificate: {}",
        .probe.target,
        .probe.handshake_error.as_deref().unwrap_or("unknown error")
    )]
    HandshakeFailed { probe: Box<Probe> },

    #[error(
        "refusing to send HTTP requests to {} because its certificate failed verification: {}",
        .probe.target,
        .probe.trust
    )]
    NotTrusted { probe: Box<Probe> },

    #[error("I/O error with {target} while {what}: {source}")]
    Io {
        target: Target,
        what: String,
        source: io::Error,
    },

    #[error("expected an HTTP/1.x response from {target}, found: {detail}")]
    Http { target: Target, detail: String },
}

/// Connects, captures the served chain and judges it. Never sends application data.
pub fn probe(target: &Target, opts: &ProbeOptions) -> Result<Probe, ProbeError> {
    let mut session = establish(target, opts)?;
    if session.completed {
        // Polite goodbye; the verdict is already known, so failures here do not matter.
        session.conn.send_close_notify();
        let _ = session.conn.write_tls(&mut session.sock);
    }
    Ok(session.probe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::tls::test_server::*;
    use rcgen::ExtendedKeyUsagePurpose;

    #[test]
    fn no_roots_and_not_insecure_is_refused_up_front() {
        let target: Target = "https://127.0.0.1:1".parse().expect("target");
        for roots in [None, Some(Vec::new())] {
            let o = ProbeOptions {
                roots,
                ..ProbeOptions::default()
            };
            match probe(&target, &o) {
                Err(e @ ProbeError::MissingRoots { .. }) => {
                    assert!(e.to_string().contains("https://127.0.0.1:1"))
                }
                other => panic!("expected MissingRoots, got {other:?}"),
            }
        }
    }

    #[test]
    fn debug_of_options_never_shows_the_key() {
        let ca = ca("etcd-ca");
        let (cert, key) = issue(&ca, &["client"], ExtendedKeyUsagePurpose::ClientAuth, false);
        let key_bytes = format!("{:?}", key.secret_der());
        let o = ProbeOptions {
            client_identity: Some((vec![cert], key)),
            ..ProbeOptions::default()
        };
        let text = format!("{o:?}");
        assert!(text.contains("private key"), "{text}");
        assert!(!text.contains(&key_bytes[1..20]), "{text}");
        let cloned = o.clone();
        assert!(cloned.client_identity.is_some());
    }
}
