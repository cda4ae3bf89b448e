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

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    ProtocolVersion, RootCertStore, SignatureScheme,
};

pub use crate::endpoint::Target;
/// The PEM readers for roots and client identities, where callers have always found them.
pub use crate::pki::pem_bundle::{certs_from_pem, key_from_pem};

/// Largest HTTP response body [`https_request`] accepts.
pub const MAX_BODY: usize = 1024 * 1024;
/// Largest HTTP response head (status line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// How long to wait, after a TLS 1.3 handshake in which the server asked for a client
/// certificate, for the server's verdict on it (an alert, or its session tickets).
const CLIENT_AUTH_VERDICT_WAIT: Duration = Duration::from_secs(1);
/// How many bytes of a non-TLS answer to quote in errors.
const QUOTE_BYTES: usize = 64;

// ---------------------------------------------------------------------------------------------
// Options, results, errors
// ---------------------------------------------------------------------------------------------

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

/// The verdict on a served chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Trust {
    /// Chains to the given roots and covers the server name.
    Verified,
    /// Chains to the given roots but does not cover `name`; `detail` says what it covers.
    NameNotCovered { name: String, detail: String },
    /// Does not chain to the given roots, or is expired, badly signed …: rustls's words.
    Untrusted { reason: String },
    /// Not verified, on explicit request (insecure).
    NotChecked,
}

impl Trust {
    /// Verified against the given roots (not merely unchecked).
    pub fn is_verified(&self) -> bool {
        matches!(self, Trust::Verified)
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Verified => write!(f, "verified"),
            Trust::NameNotCovered { name, detail } => write!(
                f,
                "chains to the given CA but does not cover the name {name}: {detail}"
            ),
            Trust::Untrusted { reason } => write!(f, "not trusted: {reason}"),
            Trust::NotChecked => write!(f, "not checked (insecure)"),
        }
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

// ---------------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------------

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

/// `GET path` over a verified connection (see [`https_request`]).
pub fn https_get(
    target: &Target,
    path: &str,
    opts: &ProbeOptions,
) -> Result<HttpResponse, ProbeError> {
    https_request(target, "GET", path, None, opts)
}

/// `GET path` over plain HTTP, for the loopback `/healthz` ports that serve no TLS (kubelet
/// 10248, kube-proxy 10256). Returns the status and the body (at most [`MAX_BODY`] bytes).
pub fn http_get(target: &Target, path: &str, timeout: Duration) -> Result<(u16, Vec<u8>), String> {
    check_request(target, "GET", path).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let mut sock = connect(target, deadline, timeout).map_err(|e| e.to_string())?;
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    let _ = sock.set_read_timeout(Some(left));
    let _ = sock.set_write_timeout(Some(left));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: certs/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.authority(),
        env!("CARGO_PKG_VERSION"),
    );
    sock.write_all(request.as_bytes())
        .map_err(|e| format!("http://{}: sending the request: {e}", target.authority()))?;
    let mut reader = BufReader::new(sock);
    read_response(&mut reader, "GET").map_err(|e| match e {
        HttpFailure::Io(e) => format!("http://{}: reading the response: {e}", target.authority()),
        HttpFailure::Protocol(d) => format!("http://{}: {d}", target.authority()),
    })
}

/// A minimal HTTP/1.1 request (`Connection: close`, `Host`, and with a body
/// `Content-Type: application/json` + `Content-Length`) over a connection whose chain verified
/// (or, with `insecure`, was not checked). Reads the status and a body of at most
/// [`MAX_BODY`] bytes (Content-Length, chunked, or read to close).
pub fn https_request(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    opts: &ProbeOptions,
) -> Result<HttpResponse, ProbeError> {
    let Exchange {
        mut conn,
        mut sock,
        probe,
        client_cert_requested,
        had_identity,
    } = send_request(target, method, path, body, opts)?;
    let mut reader = BufReader::new(CloseTolerant(rustls::Stream::new(&mut conn, &mut sock)));
    match read_response(&mut reader, method) {
        Ok((status, body)) => Ok(HttpResponse {
            status,
            body,
            probe,
        }),
        Err(HttpFailure::Io(e)) => Err(io_failure(
            e,
            target,
            "reading the HTTP response",
            opts.timeout,
            probe,
            client_cert_requested,
            had_identity,
        )),
        Err(HttpFailure::Protocol(detail)) => Err(ProbeError::Http {
            target: target.clone(),
            detail,
        }),
    }
}

/// How a body read by [`https_stream`] is bounded: by progress, not by the whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// The longest wait for the next bytes of the body: every read gets it afresh, so a body
    /// that keeps coming may take any time, one that stalls fails after `idle`.
    pub idle: Duration,
    /// The most body bytes (chunked coding removed) read before reading fails.
    pub max_body: u64,
}

/// A response whose body is read as it arrives ([`https_stream`]).
pub struct StreamedResponse {
    pub status: u16,
    /// The connection's facts: served chain and verdict.
    pub probe: Probe,
    pub body: StreamBody,
}

impl fmt::Debug for StreamedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedResponse")
            .field("status", &self.status)
            .field("probe", &self.probe)
            .field("received", &self.body.received())
            .finish()
    }
}

type TlsReader = BufReader<CloseTolerant<rustls::StreamOwned<ClientConnection, DeadlineStream>>>;

/// The body of a [`StreamedResponse`], chunked coding removed. A read fails (`TimedOut`) when no
/// byte came within [`StreamLimits::idle`], (`InvalidData`) past [`StreamLimits::max_body`]
/// bytes, when the response ends before its announced length or final chunk, or on bad chunk
/// framing; the end of the body reads as 0.
pub struct StreamBody {
    inner: BodyReader<TlsReader>,
    idle: Duration,
}

impl StreamBody {
    /// Body bytes read so far.
    pub fn received(&self) -> u64 {
        self.inner.read
    }
}

impl Read for StreamBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if is_timeout(&e) {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no byte of the response body for {:?} (after {} bytes)",
                        self.idle, self.inner.read
                    ),
                )
            } else {
                e
            }
        })
    }
}

/// [`https_request`] whose body is not read into memory: once the status and headers are in
/// (within [`ProbeOptions::timeout`], like the whole of an [`https_request`]), the caller reads
/// [`StreamedResponse::body`] as it arrives, each read waiting at most [`StreamLimits::idle`],
/// at most [`StreamLimits::max_body`] bytes in all (a Content-Length above it is refused at
/// once). For long answers: an etcd snapshot over the v3 gateway.
pub fn https_stream(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    opts: &ProbeOptions,
    limits: StreamLimits,
) -> Result<StreamedResponse, ProbeError> {
    let Exchange {
        conn,
        sock,
        probe,
        client_cert_requested,
        had_identity,
    } = send_request(target, method, path, body, opts)?;
    let mut reader: TlsReader = BufReader::with_capacity(
        64 * 1024,
        CloseTolerant(rustls::StreamOwned::new(conn, sock)),
    );
    let (status, framing) = match read_head(&mut reader, method) {
        Ok(head) => head,
        Err(HttpFailure::Io(e)) => {
            return Err(io_failure(
                e,
                target,
                "reading the HTTP response",
                opts.timeout,
                probe,
                client_cert_requested,
                had_identity,
            ))
        }
        Err(HttpFailure::Protocol(detail)) => {
            return Err(ProbeError::Http {
                target: target.clone(),
                detail,
            })
        }
    };
    if let Framing::Length(n) = framing {
        if n > limits.max_body {
            return Err(ProbeError::Http {
                target: target.clone(),
                detail: format!(
                    "a response body of {n} bytes, more than the {} accepted",
                    limits.max_body
                ),
            });
        }
    }
    let idle = limits.idle.max(Duration::from_millis(1));
    reader.get_mut().0.sock.idle = Some(idle);
    Ok(StreamedResponse {
        status,
        probe,
        body: StreamBody {
            inner: BodyReader::new(reader, framing, limits.max_body),
            idle,
        },
    })
}

/// A request sent over a connection fit for it: what [`send_request`] hands on.
struct Exchange {
    conn: ClientConnection,
    sock: DeadlineStream,
    probe: Probe,
    client_cert_requested: bool,
    had_identity: bool,
}

/// Connects, refuses a chain that did not verify (unless insecure) or a failed handshake, and
/// sends the request of [`https_request`].
fn send_request(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    opts: &ProbeOptions,
) -> Result<Exchange, ProbeError> {
    check_request(target, method, path)?;
    let session = establish(target, opts)?;
    let Session {
        mut conn,
        mut sock,
        probe,
        client_cert_requested,
        had_identity,
        ..
    } = session;
    match probe.trust {
        Trust::Verified | Trust::NotChecked => {}
        Trust::NameNotCovered { .. } | Trust::Untrusted { .. } => {
            return Err(ProbeError::NotTrusted {
                probe: Box::new(probe),
            })
        }
    }
    if probe.handshake_error.is_some() {
        return Err(ProbeError::HandshakeFailed {
            probe: Box::new(probe),
        });
    }

    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: certs/{}\r\nAccept: */*\r\nConnection: close\r\n",
        target.authority(),
        env!("CARGO_PKG_VERSION"),
    )
    .into_bytes();
    match body {
        Some(b) => {
            request.extend_from_slice(
                format!(
                    "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    b.len()
                )
                .as_bytes(),
            );
            request.extend_from_slice(b);
        }
        None if method != "GET" && method != "HEAD" => {
            request.extend_from_slice(b"Content-Length: 0\r\n\r\n")
        }
        None => request.extend_from_slice(b"\r\n"),
    }

    let sent = {
        let mut stream = rustls::Stream::new(&mut conn, &mut sock);
        stream.write_all(&request).and_then(|()| stream.flush())
    };
    if let Err(e) = sent {
        let e = match salvage_alert(&mut conn, &mut sock) {
            Some(tls) => io::Error::new(io::ErrorKind::InvalidData, tls),
            None => e,
        };
        return Err(io_failure(
            e,
            target,
            "sending the HTTP request",
            opts.timeout,
            probe,
            client_cert_requested,
            had_identity,
        ));
    }
    Ok(Exchange {
        conn,
        sock,
        probe,
        client_cert_requested,
        had_identity,
    })
}

// ---------------------------------------------------------------------------------------------
// Connection set-up
// ---------------------------------------------------------------------------------------------

struct Session {
    conn: ClientConnection,
    sock: DeadlineStream,
    probe: Probe,
    /// The handshake completed (and no post-handshake rejection was seen).
    completed: bool,
    client_cert_requested: bool,
    had_identity: bool,
}

/// What the verifier and the client-certificate resolver observed during one handshake.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<Vec<u8>>,
    trust: Option<Trust>,
    /// Our verifier rejected the chain (the handshake was aborted because of it).
    rejected: bool,
    /// The server sent a CertificateRequest.
    client_cert_requested: bool,
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn establish(target: &Target, opts: &ProbeOptions) -> Result<Session, ProbeError> {
    let now = Instant::now();
    // A huge timeout must not overflow the clock: cap it at a day.
    let deadline = now
        .checked_add(opts.timeout)
        .unwrap_or_else(|| now + Duration::from_secs(24 * 3600));
    let invalid = |detail: String| ProbeError::InvalidOptions {
        target: target.clone(),
        detail,
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());

    let name_text = opts.server_name.as_deref().unwrap_or(&target.host);
    let server_name = ServerName::try_from(name_text.to_string())
        .map_err(|e| invalid(format!("{name_text:?} is not a valid server name: {e}")))?;

    let roots = opts.roots.as_deref().filter(|r| !r.is_empty());
    let inner = match (roots, opts.insecure) {
        (_, true) => None,
        (None, false) => {
            return Err(ProbeError::MissingRoots {
                target: target.clone(),
            })
        }
        (Some(roots), false) => {
            let mut store = RootCertStore::empty();
            for (i, root) in roots.iter().enumerate() {
                store.add(root.clone()).map_err(|e| {
                    invalid(format!(
                        "CA certificate #{} cannot be used as a trust anchor: {e}",
                        i + 1
                    ))
                })?;
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .map_err(|e| {
                        invalid(format!(
                            "cannot build a verifier from the CA certificates: {e}"
                        ))
                    })?;
            Some(verifier)
        }
    };

    let seen = Arc::new(Mutex::new(Seen::default()));
    let verifier = Arc::new(CapturingVerifier {
        inner,
        provider: provider.clone(),
        name: name_text.to_string(),
        seen: seen.clone(),
    });
    let identity = match &opts.client_identity {
        None => None,
        Some((chain, key)) => {
            if chain.is_empty() {
                return Err(invalid(
                    "the client identity has a private key but no certificate".to_string(),
                ));
            }
            let certified = CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
                .map_err(|e| {
                    invalid(format!(
                        "the client certificate and key cannot be used: {e}"
                    ))
                })?;
            Some(Arc::new(certified))
        }
    };
    let had_identity = identity.is_some();
    let resolver = Arc::new(RecordingClientCert {
        identity,
        seen: seen.clone(),
    });

    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("cannot configure TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(resolver);
    // Every call must see the full handshake: a resumed session would skip the verifier.
    config.resumption = Resumption::disabled();

    let tcp = connect(target, deadline, opts.timeout)?;
    let _ = tcp.set_nodelay(true);
    let mut sock = DeadlineStream {
        tcp,
        deadline,
        first_bytes: Vec::new(),
        idle: None,
    };
    let mut conn = ClientConnection::new(Arc::new(config), server_name)
        .map_err(|e| invalid(format!("cannot start a TLS session: {e}")))?;

    let outcome = drive_handshake(&mut conn, &mut sock);

    let snapshot = {
        let mut s = lock(&seen);
        Seen {
            chain: std::mem::take(&mut s.chain),
            trust: s.trust.take(),
            rejected: s.rejected,
            client_cert_requested: s.client_cert_requested,
        }
    };

    let (handshake_error, completed) = match outcome {
        Ok(()) => {
            let verdict = if snapshot.client_cert_requested
                && conn.protocol_version() == Some(ProtocolVersion::TLSv1_3)
            {
                await_client_auth_verdict(&mut conn, &mut sock, had_identity)
            } else {
                None
            };
            let completed = verdict.is_none();
            (verdict, completed)
        }
        Err(failure) => {
            if snapshot.chain.is_empty() {
                return Err(no_certificate(target, failure, &sock, opts.timeout));
            }
            if snapshot.rejected {
                (None, false)
            } else {
                let detail = match failure {
                    HandshakeFailure::Tls(e) => {
                        describe_peer_error(&e, snapshot.client_cert_requested, had_identity)
                    }
                    HandshakeFailure::Eof => {
                        "the server closed the connection during the handshake".to_string()
                    }
                    HandshakeFailure::Io(e) if is_timeout(&e) => format!(
                        "no answer within {:?} after the server presented its certificate",
                        opts.timeout
                    ),
                    HandshakeFailure::Io(e) => format!("connection failed: {e}"),
                };
                (Some(detail), false)
            }
        }
    };

    let trust = match snapshot.trust {
        Some(t) => t,
        // Unreachable in practice: the chain is only captured together with a verdict.
        None => Trust::Untrusted {
            reason: "the handshake ended before the chain could be judged".to_string(),
        },
    };
    Ok(Session {
        conn,
        sock,
        probe: Probe {
            target: target.clone(),
            chain: snapshot.chain,
            trust,
            handshake_error,
        },
        completed,
        client_cert_requested: snapshot.client_cert_requested,
        had_identity,
    })
}

enum HandshakeFailure {
    Tls(rustls::Error),
    Io(io::Error),
    Eof,
}

fn drive_handshake(
    conn: &mut ClientConnection,
    sock: &mut DeadlineStream,
) -> Result<(), HandshakeFailure> {
    loop {
        while conn.wants_write() {
            if let Err(e) = conn.write_tls(sock) {
                return Err(match salvage_alert(conn, sock) {
                    Some(tls) => HandshakeFailure::Tls(tls),
                    None => HandshakeFailure::Io(e),
                });
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        match conn.read_tls(sock) {
            Ok(0) => return Err(HandshakeFailure::Eof),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    // Last-gasp: tell the server why (an alert is queued), ignore failures.
                    let _ = conn.write_tls(sock);
                    return Err(HandshakeFailure::Tls(e));
                }
            }
            Err(e) => return Err(HandshakeFailure::Io(e)),
        }
    }
}

/// After a failed write: the server may have rejected us with an alert and closed before our
/// last flight went out (a TLS 1.2 server refusing an empty client certificate does). The
/// alert is then still waiting in the receive buffer; read it, it says more than "broken pipe".
fn salvage_alert(conn: &mut ClientConnection, sock: &mut DeadlineStream) -> Option<rustls::Error> {
    match conn.read_tls(sock) {
        Ok(n) if n > 0 => conn.process_new_packets().err(),
        _ => None,
    }
}

/// In TLS 1.3 the client finishes its side of the handshake before the server has looked at
/// the client certificate; a rejection arrives as an alert afterwards. Wait briefly for the
/// server's first post-handshake record: an alert (rejected) or anything else, typically
/// session tickets (accepted). Returns the rejection, if any.
fn await_client_auth_verdict(
    conn: &mut ClientConnection,
    sock: &mut DeadlineStream,
    had_identity: bool,
) -> Option<String> {
    let saved = sock.deadline;
    sock.deadline = saved.min(Instant::now() + CLIENT_AUTH_VERDICT_WAIT);
    let verdict = match conn.read_tls(sock) {
        Ok(0) => Some(if had_identity {
            "the server closed the connection right after the handshake (did it reject the client certificate?)".to_string()
        } else {
            "the server closed the connection right after the handshake (does it require a client certificate?)".to_string()
        }),
        Ok(_) => match conn.process_new_packets() {
            Ok(state) if state.peer_has_closed() => {
                Some("the server closed the TLS session right after the handshake".to_string())
            }
            Ok(_) => None,
            Err(e) => {
                let _ = conn.write_tls(sock);
                Some(describe_peer_error(&e, true, had_identity))
            }
        },
        // Silence: nothing to object to (the server may not send session tickets).
        Err(e) if is_timeout(&e) => None,
        Err(e) => Some(format!(
            "the connection failed right after the handshake: {e}"
        )),
    };
    sock.deadline = saved;
    verdict
}

fn describe_peer_error(e: &rustls::Error, cert_requested: bool, had_identity: bool) -> String {
    if let rustls::Error::AlertReceived(alert) = e {
        let client_auth_alert = matches!(
            alert,
            AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::AccessDenied
                | AlertDescription::HandshakeFailure
                | AlertDescription::DecryptError
        );
        if cert_requested && client_auth_alert {
            return if had_identity {
                format!("the server rejected the client certificate (TLS alert {alert:?})")
            } else {
                format!(
                    "the server requires a client certificate and none was given (TLS alert {alert:?})"
                )
            };
        }
    }
    e.to_string()
}

fn no_certificate(
    target: &Target,
    failure: HandshakeFailure,
    sock: &DeadlineStream,
    timeout: Duration,
) -> ProbeError {
    let got = &sock.first_bytes;
    // A TLS record starts with a content type in 0x14..=0x18 and major version 3.
    let looks_like_tls = got.len() < 2 || ((0x14..=0x18).contains(&got[0]) && got[1] == 3);
    let detail = match failure {
        _ if !looks_like_tls => format!(
            "a server that does not speak TLS (plain HTTP?); it answered {}",
            quote(got)
        ),
        HandshakeFailure::Io(e) if is_timeout(&e) => {
            return ProbeError::Timeout {
                target: target.clone(),
                what: "waiting for the TLS handshake (the connection was accepted, the ClientHello got no answer)"
                    .to_string(),
                after: timeout,
            }
        }
        HandshakeFailure::Eof if got.is_empty() => {
            "the server closed the connection without answering the TLS ClientHello".to_string()
        }
        HandshakeFailure::Eof => {
            "the server closed the connection before presenting a certificate".to_string()
        }
        HandshakeFailure::Tls(rustls::Error::AlertReceived(alert)) => format!(
            "the server refused the TLS handshake before presenting a certificate (TLS alert {alert:?})"
        ),
        HandshakeFailure::Tls(e) => {
            format!("the TLS handshake failed before a certificate was presented: {e}")
        }
        HandshakeFailure::Io(e) => {
            format!("the connection failed before a certificate was presented: {e}")
        }
    };
    ProbeError::NoCertificate {
        target: target.clone(),
        detail,
    }
}

fn quote(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(QUOTE_BYTES)];
    let mut text = format!("{:?}", String::from_utf8_lossy(shown));
    if bytes.len() > QUOTE_BYTES {
        text.push('…');
    }
    text
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn connect(target: &Target, deadline: Instant, timeout: Duration) -> Result<TcpStream, ProbeError> {
    let addrs = resolve(target, deadline, timeout)?;
    let mut last: Option<(SocketAddr, io::Error)> = None;
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        // Share what is left among the remaining addresses, so one black hole cannot eat it all.
        let remaining = u32::try_from(addrs.len() - i).unwrap_or(u32::MAX).max(1);
        let share = (left / remaining).max(Duration::from_millis(1));
        match TcpStream::connect_timeout(addr, share) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((*addr, e)),
        }
    }
    match last {
        Some((addr, e)) if !is_timeout(&e) => Err(ProbeError::Connect {
            target: target.clone(),
            addr,
            source: e,
        }),
        Some((addr, _)) => Err(ProbeError::Timeout {
            target: target.clone(),
            what: format!("connecting to {addr}"),
            after: timeout,
        }),
        None => Err(ProbeError::Timeout {
            target: target.clone(),
            what: "connecting".to_string(),
            after: timeout,
        }),
    }
}

fn resolve(
    target: &Target,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, ProbeError> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let failed = |detail: String| ProbeError::Resolve {
        target: target.clone(),
        detail,
    };
    // The system resolver cannot be given a timeout: ask it from a helper thread and stop
    // waiting when the budget is spent (the thread then finishes on its own).
    let (tx, rx) = mpsc::channel();
    let (host, port) = (target.host.clone(), target.port);
    let spawned = std::thread::Builder::new()
        .name("certs-resolve".to_string())
        .spawn(move || {
            let found = (host.as_str(), port)
                .to_socket_addrs()
                .map(|it| it.collect::<Vec<_>>());
            let _ = tx.send(found);
        });
    let found = match spawned {
        Ok(_) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(found) => found,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(ProbeError::Timeout {
                    target: target.clone(),
                    what: format!("resolving {:?}", target.host),
                    after: timeout,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(failed(
                    "the resolver thread ended without an answer".to_string(),
                ))
            }
        },
        Err(_) => (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map(|it| it.collect()),
    };
    match found {
        Ok(addrs) if addrs.is_empty() => Err(failed(format!(
            "{:?} resolved to no addresses",
            target.host
        ))),
        Ok(addrs) => Ok(addrs),
        Err(e) => Err(failed(format!("{:?}: {e}", target.host))),
    }
}

/// A TCP stream whose every read and write gets the time left until one deadline, and which
/// remembers the first bytes the server sent (to quote non-TLS answers). With `idle` set (a
/// streamed body, [`https_stream`]), every read and write gets `idle` instead: progress renews
/// the budget.
struct DeadlineStream {
    tcp: TcpStream,
    deadline: Instant,
    first_bytes: Vec<u8>,
    idle: Option<Duration>,
}

impl DeadlineStream {
    fn left(&self) -> io::Result<Duration> {
        if let Some(idle) = self.idle {
            return Ok(idle);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "time budget spent"))
        } else {
            Ok(left)
        }
    }
}

fn timeout_kind(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_read_timeout(Some(left))?;
        let n = self.tcp.read(buf).map_err(timeout_kind)?;
        if self.first_bytes.len() < QUOTE_BYTES + 1 {
            let take = n.min(QUOTE_BYTES + 1 - self.first_bytes.len());
            self.first_bytes.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.tcp.set_write_timeout(Some(left))?;
        self.tcp.write(buf).map_err(timeout_kind)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

// ---------------------------------------------------------------------------------------------
// Verifier and client-certificate resolver
// ---------------------------------------------------------------------------------------------

/// Records the presented chain, then delegates the verdict to webpki (unless insecure).
#[derive(Debug)]
struct CapturingVerifier {
    /// `None` with `insecure`.
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    name: String,
    seen: Arc<Mutex<Seen>>,
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        let Some(inner) = &self.inner else {
            let mut seen = lock(&self.seen);
            seen.chain = chain;
            seen.trust = Some(Trust::NotChecked);
            return Ok(ServerCertVerified::assertion());
        };
        let result =
            inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        let mut seen = lock(&self.seen);
        seen.chain = chain;
        match &result {
            Ok(_) => seen.trust = Some(Trust::Verified),
            Err(e) => {
                seen.trust = Some(classify(e, &self.name));
                seen.rejected = true;
            }
        }
        result
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Offers the configured client identity (if any) and records that the server asked for one.
struct RecordingClientCert {
    identity: Option<Arc<CertifiedKey>>,
    seen: Arc<Mutex<Seen>>,
}

impl fmt::Debug for RecordingClientCert {
    // Hand-written: never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingClientCert")
            .field("has_identity", &self.identity.is_some())
            .finish()
    }
}

impl ResolvesClientCert for RecordingClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        lock(&self.seen).client_cert_requested = true;
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// Turns webpki's objection into a [`Trust`] verdict.
fn classify(e: &rustls::Error, name: &str) -> Trust {
    let rustls::Error::InvalidCertificate(ce) = e else {
        return Trust::Untrusted {
            reason: e.to_string(),
        };
    };
    match ce {
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| friendly_san(p)).collect();
            let detail = if names.is_empty() {
                "the certificate has no subjectAltName entries, so it is valid for no name"
                    .to_string()
            } else {
                format!(
                    "the certificate is valid for {}, not for {name}",
                    names.join(", ")
                )
            };
            Trust::NameNotCovered {
                name: name.to_string(),
                detail,
            }
        }
        CertificateError::NotValidForName => Trust::NameNotCovered {
            name: name.to_string(),
            detail: format!("the certificate's subjectAltNames do not include {name}"),
        },
        CertificateError::UnknownIssuer => Trust::Untrusted {
            reason: format!("it does not chain to the given CA certificate(s) ({e})"),
        },
        CertificateError::BadSignature => Trust::Untrusted {
            reason: format!("a signature in the chain does not verify ({e})"),
        },
        CertificateError::ExpiredContext { time, not_after } => Trust::Untrusted {
            reason: format!(
                "a certificate in the chain expired at {} (checked at {})",
                rfc3339(*not_after),
                rfc3339(*time)
            ),
        },
        CertificateError::NotValidYetContext { time, not_before } => Trust::Untrusted {
            reason: format!(
                "a certificate in the chain is not valid before {} (checked at {})",
                rfc3339(*not_before),
                rfc3339(*time)
            ),
        },
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            Trust::Untrusted {
                reason: format!(
                    "the certificate is not usable for TLS server authentication ({e})"
                ),
            }
        }
        _ => Trust::Untrusted {
            reason: e.to_string(),
        },
    }
}

/// `DnsName("a.b")` → `DNS:a.b`, `IpAddress(10.0.0.1)` → `IP:10.0.0.1` (webpki's Debug forms).
fn friendly_san(presented: &str) -> String {
    if let Some(dns) = presented
        .strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
    {
        return format!("DNS:{dns}");
    }
    if let Some(ip) = presented
        .strip_prefix("IpAddress(")
        .and_then(|s| s.strip_suffix(')'))
    {
        return format!("IP:{ip}");
    }
    presented.to_string()
}

fn rfc3339(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|dt| {
            dt.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} (UNIX)"))
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1
// ---------------------------------------------------------------------------------------------

fn check_request(target: &Target, method: &str, path: &str) -> Result<(), ProbeError> {
    let bad = |detail: String| ProbeError::InvalidOptions {
        target: target.clone(),
        detail,
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad(format!(
            "HTTP method {method:?} is not valid (expected e.g. GET or POST)"
        )));
    }
    if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad(format!(
            "HTTP path {path:?} is not valid (expected it to start with '/' and contain no spaces or control characters)"
        )));
    }
    Ok(())
}

/// Maps an I/O failure during the HTTP exchange; a TLS alert there is the server's late
/// verdict on the handshake (TLS 1.3 client authentication).
fn io_failure(
    e: io::Error,
    target: &Target,
    what: &str,
    timeout: Duration,
    mut probe: Probe,
    cert_requested: bool,
    had_identity: bool,
) -> ProbeError {
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        if matches!(tls, rustls::Error::AlertReceived(_)) {
            probe.handshake_error = Some(describe_peer_error(tls, cert_requested, had_identity));
            return ProbeError::HandshakeFailed {
                probe: Box::new(probe),
            };
        }
    }
    if is_timeout(&e) {
        return ProbeError::Timeout {
            target: target.clone(),
            what: what.to_string(),
            after: timeout,
        };
    }
    ProbeError::Io {
        target: target.clone(),
        what: what.to_string(),
        source: e,
    }
}

enum HttpFailure {
    Io(io::Error),
    Protocol(String),
}

impl From<io::Error> for HttpFailure {
    fn from(e: io::Error) -> Self {
        HttpFailure::Io(e)
    }
}

/// Treats a TCP close without TLS close_notify as end of stream; truncation is still noticed
/// where the length is known (Content-Length, chunked).
struct CloseTolerant<R>(R);

impl<R: Read> Read for CloseTolerant<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            other => other,
        }
    }
}

/// Reads one line (up to `limit` bytes) without its line ending; `None` at end of stream.
fn read_line<R: BufRead>(
    r: &mut R,
    limit: usize,
    what: &str,
) -> Result<Option<String>, HttpFailure> {
    let mut line = Vec::new();
    let n = r.take(limit as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with(b"\n") {
        if line.len() > limit {
            return Err(HttpFailure::Protocol(format!(
                "{what} longer than {limit} bytes"
            )));
        }
        return Err(HttpFailure::Protocol(format!(
            "the response ended in the middle of {what} {}",
            quote(&line)
        )));
    }
    line.pop();
    if line.ends_with(b"\r") {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn read_response<R: BufRead>(r: &mut R, method: &str) -> Result<(u16, Vec<u8>), HttpFailure> {
    let (status, framing) = read_head(r, method)?;
    let body = match framing {
        Framing::Empty => Vec::new(),
        Framing::Chunked => read_chunked(r)?,
        Framing::Length(n) => read_exact_body(r, usize::try_from(n).unwrap_or(usize::MAX))?,
        Framing::ToClose => {
            let mut body = Vec::new();
            r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
            if body.len() > MAX_BODY {
                return Err(too_big());
            }
            body
        }
    };
    Ok((status, body))
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 204, 304, 101).
    Empty,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// `Content-Length`.
    Length(u64),
    /// Read until the server closes.
    ToClose,
}

/// The status line and headers of the final response (interim 1xx ones skipped), and how its
/// body is delimited.
fn read_head<R: BufRead>(r: &mut R, method: &str) -> Result<(u16, Framing), HttpFailure> {
    loop {
        let Some(status_line) = read_line(r, MAX_HEAD, "the status line")? else {
            return Err(HttpFailure::Protocol(
                "the server closed the connection without answering".to_string(),
            ));
        };
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        let code = parts.next().unwrap_or_default();
        let status = match (version.starts_with("HTTP/1."), code.parse::<u16>()) {
            (true, Ok(s)) if (100..=999).contains(&s) && code.len() == 3 => s,
            _ => {
                return Err(HttpFailure::Protocol(format!(
                    "status line {}",
                    quote(status_line.as_bytes())
                )))
            }
        };

        let mut head_len = status_line.len();
        let mut content_length: Option<usize> = None;
        let mut chunked = false;
        loop {
            let Some(line) = read_line(r, MAX_HEAD, "a header line")? else {
                return Err(HttpFailure::Protocol(
                    "the response ended inside its headers".to_string(),
                ));
            };
            if line.is_empty() {
                break;
            }
            head_len += line.len();
            if head_len > MAX_HEAD {
                return Err(HttpFailure::Protocol(format!(
                    "response headers longer than {MAX_HEAD} bytes"
                )));
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(HttpFailure::Protocol(format!(
                    "header line {}",
                    quote(line.as_bytes())
                )));
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            } else if name.eq_ignore_ascii_case("content-length") {
                let n = value.parse::<usize>().map_err(|_| {
                    HttpFailure::Protocol(format!("Content-Length {value:?} is not a number"))
                })?;
                if content_length.is_some_and(|prev| prev != n) {
                    return Err(HttpFailure::Protocol(
                        "conflicting Content-Length headers".to_string(),
                    ));
                }
                content_length = Some(n);
            }
        }

        if (100..200).contains(&status) && status != 101 {
            continue; // interim response (100 Continue …): the real one follows
        }
        if method == "HEAD" || status == 204 || status == 304 || status == 101 {
            return Ok((status, Framing::Empty));
        }
        return Ok((
            status,
            if chunked {
                Framing::Chunked
            } else if let Some(n) = content_length {
                Framing::Length(n as u64)
            } else {
                Framing::ToClose
            },
        ));
    }
}

fn too_big() -> HttpFailure {
    HttpFailure::Protocol(format!("a response body larger than {MAX_BODY} bytes"))
}

fn read_exact_body<R: BufRead>(r: &mut R, n: usize) -> Result<Vec<u8>, HttpFailure> {
    if n > MAX_BODY {
        return Err(too_big());
    }
    let mut body = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut body)?;
    if body.len() < n {
        return Err(HttpFailure::Protocol(format!(
            "the response ended after {} of {n} announced body bytes",
            body.len()
        )));
    }
    Ok(body)
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, HttpFailure> {
    let mut body = Vec::new();
    loop {
        let Some(line) = read_line(r, 4096, "a chunk size line")? else {
            return Err(HttpFailure::Protocol(
                "the chunked response ended without its final chunk".to_string(),
            ));
        };
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .ok()
            .filter(|_| !size_text.is_empty() && size_text.len() <= 16)
            .ok_or_else(|| {
                HttpFailure::Protocol(format!("chunk size {}", quote(line.as_bytes())))
            })?;
        if size == 0 {
            // Trailers, up to the empty line; a close right here is tolerated.
            while let Some(trailer) = read_line(r, MAX_HEAD, "a trailer line")? {
                if trailer.is_empty() {
                    break;
                }
            }
            return Ok(body);
        }
        if size > MAX_BODY - body.len() {
            return Err(too_big());
        }
        let chunk = read_exact_body(r, size)?;
        body.extend_from_slice(&chunk);
        match read_line(r, 2, "the line ending after a chunk")? {
            Some(rest) if rest.is_empty() => {}
            _ => {
                return Err(HttpFailure::Protocol(
                    "a chunk is not followed by CRLF".to_string(),
                ))
            }
        }
    }
}

/// A body read as it arrives ([`https_stream`]): the bytes of `framing`, chunked coding
/// removed, at most `max` of them.
struct BodyReader<R> {
    r: R,
    framing: Framing,
    /// Bytes left in the current chunk, or of the Content-Length.
    left: u64,
    /// A chunk's data was read: its CRLF comes before the next size line.
    in_chunks: bool,
    done: bool,
    /// Body bytes handed out.
    read: u64,
    max: u64,
}

fn protocol(detail: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, detail)
}

fn to_io(e: HttpFailure) -> io::Error {
    match e {
        HttpFailure::Io(e) => e,
        HttpFailure::Protocol(d) => protocol(d),
    }
}

impl<R: BufRead> BodyReader<R> {
    fn new(r: R, framing: Framing, max: u64) -> BodyReader<R> {
        BodyReader {
            r,
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            in_chunks: false,
            done: framing == Framing::Empty,
            read: 0,
            max,
        }
    }

    /// Reads up to the next chunk's data; false after the last chunk (and its trailers).
    fn next_chunk(&mut self) -> io::Result<bool> {
        if self.in_chunks {
            match read_line(&mut self.r, 2, "the line ending after a chunk") {
                Ok(Some(rest)) if rest.is_empty() => {}
                Err(HttpFailure::Io(e)) => return Err(e),
                _ => return Err(protocol("a chunk is not followed by CRLF".into())),
            }
        }
        let Some(line) = read_line(&mut self.r, 4096, "a chunk size line").map_err(to_io)? else {
            return Err(protocol(
                "the chunked response ended without its final chunk".into(),
            ));
        };
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .ok()
            .filter(|_| !size_text.is_empty() && size_text.len() <= 16)
            .ok_or_else(|| protocol(format!("chunk size {}", quote(line.as_bytes()))))?;
        if size == 0 {
            while let Some(trailer) =
                read_line(&mut self.r, MAX_HEAD, "a trailer line").map_err(to_io)?
            {
                if trailer.is_empty() {
                    break;
                }
            }
            return Ok(false);
        }
        if size > self.max - self.read {
            return Err(self.too_big());
        }
        self.in_chunks = true;
        self.left = size;
        Ok(true)
    }

    fn too_big(&self) -> io::Error {
        protocol(format!(
            "a response body larger than the {} bytes accepted",
            self.max
        ))
    }
}

impl<R: BufRead> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.done {
            return Ok(0);
        }
        if self.framing == Framing::Chunked && self.left == 0 && !self.next_chunk()? {
            self.done = true;
            return Ok(0);
        }
        let want = match self.framing {
            Framing::Length(_) | Framing::Chunked => self.left,
            _ => u64::MAX,
        };
        if want == 0 {
            self.done = true;
            return Ok(0);
        }
        let cap = buf.len().min(usize::try_from(want).unwrap_or(usize::MAX));
        let n = self.r.read(&mut buf[..cap])?;
        if n == 0 {
            return match self.framing {
                Framing::Length(total) => Err(protocol(format!(
                    "the response ended after {} of {total} announced body bytes",
                    self.read
                ))),
                Framing::Chunked => Err(protocol(format!(
                    "the response ended inside a chunk ({} bytes of it missing)",
                    self.left
                ))),
                _ => {
                    self.done = true;
                    Ok(0)
                }
            };
        }
        if n as u64 > self.max - self.read {
            return Err(self.too_big());
        }
        self.read += n as u64;
        if matches!(self.framing, Framing::Length(_) | Framing::Chunked) {
            self.left -= n as u64;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::server::WebPkiClientVerifier;
    use rustls::{ServerConfig, ServerConnection};
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};

    const HEALTH: &[u8] = br#"{"health":"true"}"#;

    struct Ca {
        cert: CertificateDer<'static>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA cert");
        Ca {
            cert: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(
        ca: &Ca,
        sans: &[&str],
        eku: ExtendedKeyUsagePurpose,
        expired: bool,
    ) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let names: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, sans.first().copied().unwrap_or("leaf"));
        params.extended_key_usages = vec![eku];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &ca.issuer).expect("leaf cert");
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key_der)
    }

    fn server_leaf(ca: &Ca) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        issue(
            ca,
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
            false,
        )
    }

    enum ClientAuth<'a> {
        None,
        Required(&'a Ca),
        Optional(&'a Ca),
    }

    fn server_config(
        leaf: &(CertificateDer<'static>, PrivateKeyDer<'static>),
        client_auth: ClientAuth<'_>,
        tls12_only: bool,
    ) -> ServerConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .expect("versions");
        let client_verifier = |ca: &Ca, optional: bool| {
            let mut roots = RootCertStore::empty();
            roots.add(ca.cert.clone()).expect("client CA");
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if optional {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build().expect("client verifier")
        };
        let builder = match client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Required(ca) => {
                builder.with_client_cert_verifier(client_verifier(ca, false))
            }
            ClientAuth::Optional(ca) => {
                builder.with_client_cert_verifier(client_verifier(ca, true))
            }
        };
        builder
            .with_single_cert(vec![leaf.0.clone()], leaf.1.clone_key())
            .expect("server cert")
    }

    #[derive(Clone, Copy)]
    enum Reply {
        /// Handshake, then read until the client goes away.
        Nothing,
        /// Read one request, answer `200 OK` with [`HEALTH`].
        Health { chunked: bool },
        /// Read one request, answer `200 OK`, chunked: `pieces` chunks of [`stream_piece`]
        /// bytes each, `pause` before each chunk after the first.
        Stream {
            pieces: usize,
            size: usize,
            pause: Duration,
        },
    }

    /// Piece `i` of a [`Reply::Stream`] body.
    fn stream_piece(i: usize, size: usize) -> Vec<u8> {
        (0..size).map(|j| ((i * size + j) % 251) as u8).collect()
    }

    /// A rustls server on loopback for `connections` connections; yields the requests it read.
    fn serve(
        config: ServerConfig,
        connections: usize,
        reply: Reply,
    ) -> (Target, JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let config = Arc::new(config);
        let handle = thread::spawn(move || {
            let mut requests = Vec::new();
            for _ in 0..connections {
                let Ok((sock, _)) = listener.accept() else {
                    break;
                };
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = sock.set_write_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = ServerConnection::new(config.clone()) else {
                    break;
                };
                let mut tls = rustls::StreamOwned::new(conn, sock);
                match reply {
                    Reply::Nothing => {
                        let mut buf = [0u8; 1024];
                        while matches!(tls.read(&mut buf), Ok(n) if n > 0) {}
                    }
                    Reply::Health { chunked } => {
                        if let Some(request) = read_request(&mut tls) {
                            requests.push(request);
                            let _ = answer(&mut tls, chunked);
                        }
                    }
                    Reply::Stream {
                        pieces,
                        size,
                        pause,
                    } => {
                        if let Some(request) = read_request(&mut tls) {
                            requests.push(request);
                            let _ = stream_answer(&mut tls, pieces, size, pause);
                        }
                    }
                }
            }
            requests
        });
        (
            Target {
                host: "127.0.0.1".to_string(),
                port,
            },
            handle,
        )
    }

    fn read_request(r: &mut impl Read) -> Option<String> {
        let mut data = Vec::new();
        let mut byte = [0u8; 1];
        while !data.ends_with(b"\r\n\r\n") {
            match r.read(&mut byte) {
                Ok(1) => data.push(byte[0]),
                _ => return None,
            }
        }
        let head = String::from_utf8_lossy(&data).into_owned();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        r.read_exact(&mut body).ok()?;
        Some(head + &String::from_utf8_lossy(&body))
    }

    fn answer(
        tls: &mut rustls::StreamOwned<ServerConnection, TcpStream>,
        chunked: bool,
    ) -> io::Result<()> {
        let mut out = Vec::new();
        if chunked {
            out.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            );
            for piece in HEALTH.chunks(7) {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    HEALTH.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(HEALTH);
        }
        tls.write_all(&out)?;
        tls.conn.send_close_notify();
        tls.flush()
    }

    fn stream_answer(
        tls: &mut rustls::StreamOwned<ServerConnection, TcpStream>,
        pieces: usize,
        size: usize,
        pause: Duration,
    ) -> io::Result<()> {
        tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")?;
        for i in 0..pieces {
            if i > 0 {
                tls.flush()?;
                thread::sleep(pause);
            }
            let piece = stream_piece(i, size);
            tls.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
            tls.write_all(&piece)?;
            tls.write_all(b"\r\n")?;
        }
        tls.write_all(b"0\r\n\r\n")?;
        tls.conn.send_close_notify();
        tls.flush()
    }

    fn opts(roots: &[&Ca]) -> ProbeOptions {
        ProbeOptions {
            roots: Some(roots.iter().map(|c| c.cert.clone()).collect()),
            timeout: Duration::from_secs(5),
            ..ProbeOptions::default()
        }
    }

    #[test]
    fn verified_with_the_right_ca() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Nothing,
        );
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(probe.trust, Trust::Verified);
        assert_eq!(probe.handshake_error, None);
        assert_eq!(probe.chain.len(), 1);
        assert!(probe.serves_leaf(leaf.0.as_ref()));
        assert_eq!(probe.target, target);
        server.join().expect("server thread");
    }

    #[test]
    fn host_names_are_resolved() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (ip_target, server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Nothing,
        );
        // "localhost" may resolve to ::1 first, where nothing listens: the next address is tried.
        let target: Target = format!("https://localhost:{}", ip_target.port)
            .parse()
            .expect("target");
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(probe.trust, Trust::Verified);
        server.join().expect("server thread");
    }

    #[test]
    fn unresolvable_host_is_an_error() {
        let target: Target = "https://no-such-host.invalid:6443".parse().expect("target");
        let o = ProbeOptions {
            insecure: true,
            timeout: Duration::from_secs(2),
            ..ProbeOptions::default()
        };
        match probe(&target, &o) {
            Err(e @ (ProbeError::Resolve { .. } | ProbeError::Timeout { .. })) => {
                assert!(e.to_string().contains("no-such-host.invalid"), "{e}")
            }
            other => panic!("expected Resolve, got {other:?}"),
        }
    }

    #[test]
    fn verified_over_tls12_too() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::None, true),
            1,
            Reply::Nothing,
        );
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(probe.trust, Trust::Verified);
        assert_eq!(probe.handshake_error, None);
        server.join().expect("server thread");
    }

    #[test]
    fn untrusted_with_another_ca_still_captures_the_chain() {
        let ca1 = ca("etcd-ca");
        let other = ca("kubernetes");
        let leaf = server_leaf(&ca1);
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Nothing,
        );
        let probe = probe(&target, &opts(&[&other])).expect("probe");
        match &probe.trust {
            Trust::Untrusted { reason } => {
                assert!(reason.contains("UnknownIssuer"), "{reason}")
            }
            t => panic!("expected Untrusted, got {t:?}"),
        }
        assert_eq!(probe.handshake_error, None);
        assert_eq!(probe.leaf(), Some(leaf.0.as_ref()));
    }

    #[test]
    fn expired_server_certificate_is_untrusted_with_dates() {
        let ca = ca("kubernetes");
        let leaf = issue(
            &ca,
            &["127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            true,
        );
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Nothing,
        );
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        match &probe.trust {
            Trust::Untrusted { reason } => {
                assert!(reason.contains("expired at 2020-01-01"), "{reason}")
            }
            t => panic!("expected Untrusted, got {t:?}"),
        }
        assert!(probe.serves_leaf(leaf.0.as_ref()));
    }

    #[test]
    fn name_not_covered_says_what_the_certificate_covers() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            2,
            Reply::Nothing,
        );

        let mut o = opts(&[&ca]);
        o.server_name = Some("10.21.22.101".to_string());
        let p = probe(&target, &o).expect("probe by IP");
        match &p.trust {
            Trust::NameNotCovered { name, detail } => {
                assert_eq!(name, "10.21.22.101");
                assert!(detail.contains("IP:127.0.0.1"), "{detail}");
                assert!(detail.contains("DNS:localhost"), "{detail}");
            }
            t => panic!("expected NameNotCovered, got {t:?}"),
        }
        assert!(p.serves_leaf(leaf.0.as_ref()));

        o.server_name = Some("kubernetes.default.svc".to_string());
        let p = probe(&target, &o).expect("probe by DNS name");
        match &p.trust {
            Trust::NameNotCovered { name, detail } => {
                assert_eq!(name, "kubernetes.default.svc");
                assert!(detail.contains("127.0.0.1"), "{detail}");
            }
            t => panic!("expected NameNotCovered, got {t:?}"),
        }
    }

    #[test]
    fn required_client_certificate_missing_tls13() {
        let ca = ca("etcd-ca");
        let leaf = server_leaf(&ca);
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::Required(&ca), false),
            2,
            Reply::Health { chunked: false },
        );
        let p = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(p.trust, Trust::Verified);
        assert!(p.serves_leaf(leaf.0.as_ref()));
        let err = p.handshake_error.expect("handshake error");
        assert!(err.contains("client certificate"), "{err}");

        match https_get(&target, "/health", &opts(&[&ca])) {
            Err(ProbeError::HandshakeFailed { probe }) => {
                assert!(probe.serves_leaf(leaf.0.as_ref()));
                assert!(probe.handshake_error.is_some());
            }
            other => panic!("expected HandshakeFailed, got {other:?}"),
        }
    }

    #[test]
    fn required_client_certificate_missing_tls12() {
        let ca = ca("etcd-ca");
        let leaf = server_leaf(&ca);
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::Required(&ca), true),
            1,
            Reply::Nothing,
        );
        let p = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(p.trust, Trust::Verified);
        assert_eq!(p.chain.len(), 1);
        let err = p.handshake_error.expect("handshake error");
        assert!(err.contains("client certificate"), "{err}");
    }

    #[test]
    fn client_certificate_from_another_ca_is_rejected() {
        let ca1 = ca("etcd-ca");
        let other = ca("other");
        let leaf = server_leaf(&ca1);
        let (client_cert, client_key) = issue(
            &other,
            &["kube-apiserver-etcd-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::Required(&ca1), false),
            1,
            Reply::Nothing,
        );
        let mut o = opts(&[&ca1]);
        o.client_identity = Some((vec![client_cert], client_key));
        let p = probe(&target, &o).expect("probe");
        assert_eq!(p.trust, Trust::Verified);
        let err = p.handshake_error.expect("handshake error");
        assert!(err.contains("rejected the client certificate"), "{err}");
    }

    #[test]
    fn optional_client_certificate_absent_is_fine() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::Optional(&ca), false),
            1,
            Reply::Health { chunked: false },
        );
        let response = https_get(&target, "/readyz", &opts(&[&ca])).expect("GET /readyz");
        assert_eq!(response.status, 200);
        assert_eq!(response.probe.handshake_error, None);
        let requests = server.join().expect("server thread");
        assert!(
            requests[0].starts_with("GET /readyz HTTP/1.1\r\n"),
            "{requests:?}"
        );
    }

    #[test]
    fn https_get_with_client_identity_content_length_and_chunked() {
        let ca = ca("etcd-ca");
        let leaf = server_leaf(&ca);
        let (client_cert, client_key) = issue(
            &ca,
            &["kube-apiserver-etcd-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        let mut o = opts(&[&ca]);
        o.client_identity = Some((vec![client_cert], client_key));

        for chunked in [false, true] {
            let (target, server) = serve(
                server_config(&leaf, ClientAuth::Required(&ca), false),
                1,
                Reply::Health { chunked },
            );
            let response = https_get(&target, "/health", &o).expect("GET /health");
            assert_eq!(response.status, 200);
            assert_eq!(response.body, HEALTH, "chunked={chunked}");
            assert_eq!(response.probe.trust, Trust::Verified);
            assert_eq!(response.probe.handshake_error, None);
            assert!(response.probe.serves_leaf(leaf.0.as_ref()));
            let requests = server.join().expect("server thread");
            assert_eq!(requests.len(), 1);
            let request = &requests[0];
            assert!(request.starts_with("GET /health HTTP/1.1\r\n"), "{request}");
            assert!(
                request.contains(&format!("\r\nHost: 127.0.0.1:{}\r\n", target.port)),
                "{request}"
            );
            assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
        }
    }

    #[test]
    fn https_post_sends_the_json_body() {
        let ca = ca("etcd-ca");
        let leaf = server_leaf(&ca);
        let (client_cert, client_key) = issue(
            &ca,
            &["etcd-healthcheck-client"],
            ExtendedKeyUsagePurpose::ClientAuth,
            false,
        );
        let mut o = opts(&[&ca]);
        o.client_identity = Some((vec![client_cert], client_key));
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::Required(&ca), true),
            1,
            Reply::Health { chunked: true },
        );
        let response = https_request(&target, "POST", "/v3/cluster/member/list", Some(b"{}"), &o)
            .expect("POST");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, HEALTH);
        let requests = server.join().expect("server thread");
        let request = &requests[0];
        assert!(
            request.starts_with("POST /v3/cluster/member/list HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nContent-Type: application/json\r\n"),
            "{request}"
        );
        assert!(
            request.ends_with("\r\nContent-Length: 2\r\n\r\n{}"),
            "{request}"
        );
    }

    #[test]
    fn https_get_refuses_an_untrusted_server_before_sending_anything() {
        let ca1 = ca("kubernetes");
        let other = ca("other");
        let leaf = server_leaf(&ca1);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Health { chunked: false },
        );
        match https_get(&target, "/readyz", &opts(&[&other])) {
            Err(e @ ProbeError::NotTrusted { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&target.to_string()), "{text}");
                if let ProbeError::NotTrusted { probe } = e {
                    assert!(probe.serves_leaf(leaf.0.as_ref()));
                }
            }
            other => panic!("expected NotTrusted, got {other:?}"),
        }
        assert!(server.join().expect("server thread").is_empty());
    }

    #[test]
    fn insecure_captures_without_checking() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            2,
            Reply::Health { chunked: false },
        );
        let o = ProbeOptions {
            insecure: true,
            timeout: Duration::from_secs(5),
            ..ProbeOptions::default()
        };
        let p = probe(&target, &o).expect("probe");
        assert_eq!(p.trust, Trust::NotChecked);
        assert!(p.serves_leaf(leaf.0.as_ref()));
        let response = https_get(&target, "/readyz", &o).expect("insecure GET");
        assert_eq!(response.probe.trust, Trust::NotChecked);
        assert_eq!(response.body, HEALTH);
        // The first connection sent no request.
        assert_eq!(server.join().expect("server thread").len(), 1);
    }

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
    fn refused_connection_is_a_connect_error() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let target = Target {
            host: "127.0.0.1".to_string(),
            port,
        };
        let o = ProbeOptions {
            insecure: true,
            ..ProbeOptions::default()
        };
        match probe(&target, &o) {
            Err(e @ ProbeError::Connect { .. }) => {
                assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}")
            }
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let _server = thread::spawn(move || {
            if let Ok((mut sock, _)) = listener.accept() {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 1024];
                while matches!(sock.read(&mut buf), Ok(n) if n > 0) {}
            }
        });
        let target = Target {
            host: "127.0.0.1".to_string(),
            port,
        };
        let o = ProbeOptions {
            insecure: true,
            timeout: Duration::from_millis(300),
            ..ProbeOptions::default()
        };
        match probe(&target, &o) {
            Err(e @ ProbeError::Timeout { .. }) => assert!(e.to_string().contains("300ms"), "{e}"),
            other => panic!("expected Timeout, got {other:?}"),
        }
    }

    #[test]
    fn plain_http_server_is_reported_as_not_tls() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let _server = thread::spawn(move || {
            if let Ok((mut sock, _)) = listener.accept() {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf);
                let _ = sock.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let _ = sock.shutdown(std::net::Shutdown::Write);
                while matches!(sock.read(&mut buf), Ok(n) if n > 0) {}
            }
        });
        let target = Target {
            host: "127.0.0.1".to_string(),
            port,
        };
        let o = ProbeOptions {
            insecure: true,
            ..ProbeOptions::default()
        };
        match probe(&target, &o) {
            Err(ProbeError::NoCertificate { target: t, detail }) => {
                assert_eq!(t, target);
                assert!(detail.contains("HTTP/1.1 400 Bad Request"), "{detail}");
            }
            other => panic!("expected NoCertificate, got {other:?}"),
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

    fn parse(raw: &[u8], method: &str) -> Result<(u16, Vec<u8>), String> {
        let mut r = BufReader::new(raw);
        read_response(&mut r, method).map_err(|e| match e {
            HttpFailure::Io(e) => format!("io: {e}"),
            HttpFailure::Protocol(p) => p,
        })
    }

    #[test]
    fn http_response_parsing() {
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
                "GET"
            ),
            Ok((200, b"ok".to_vec()))
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 503 Service Unavailable\r\n\r\n[-]etcd failed",
                "GET"
            ),
            Ok((503, b"[-]etcd failed".to_vec()))
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n1\r\nd\r\n0\r\nX-Trailer: 1\r\n\r\n",
                "GET"
            ),
            Ok((200, b"abcd".to_vec()))
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
                "POST"
            ),
            Ok((204, Vec::new()))
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD"),
            Ok((200, Vec::new()))
        );
        let truncated = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "GET");
        assert!(
            truncated.clone().unwrap_err().contains("3 of 10"),
            "{truncated:?}"
        );
        let huge = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(parse(huge.as_bytes(), "GET")
            .unwrap_err()
            .contains("larger"));
        let huge_chunk = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY + 1
        );
        assert!(parse(huge_chunk.as_bytes(), "GET")
            .unwrap_err()
            .contains("larger"));
        assert!(parse(b"SSH-2.0-OpenSSH\r\n", "GET")
            .unwrap_err()
            .contains("status line"));
        assert!(parse(b"", "GET").unwrap_err().contains("without answering"));
        assert!(parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "GET"
        )
        .unwrap_err()
        .contains("chunk size"));
        let endless = vec![b'a'; MAX_BODY + 10];
        let mut raw = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        raw.extend_from_slice(&endless);
        assert!(parse(&raw, "GET").unwrap_err().contains("larger"));
    }

    /// Reads `body` from `raw` as [`https_stream`] does, the source giving `feed` bytes at a
    /// time and each read asking for `ask` bytes.
    fn stream_body(
        raw: &[u8],
        framing: Framing,
        max: u64,
        feed: usize,
        ask: usize,
    ) -> Result<Vec<u8>, String> {
        let mut r = BodyReader::new(BufReader::with_capacity(feed, raw), framing, max);
        let mut out = Vec::new();
        let mut buf = vec![0u8; ask];
        loop {
            match r.read(&mut buf) {
                Ok(0) => return Ok(out),
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    assert_eq!(r.read, out.len() as u64);
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    #[test]
    fn a_streamed_body_reads_the_same_however_its_bytes_arrive() {
        let chunked =
            b"3;ext=1\r\nabc\r\n1\r\nd\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let want = b"abcd0123456789abcdef".to_vec();
        for feed in [1, 2, 3, 5, 7, 64] {
            for ask in [1, 2, 3, 16, 4096] {
                let at = format!("feed {feed}, ask {ask}");
                assert_eq!(
                    stream_body(chunked, Framing::Chunked, 1000, feed, ask),
                    Ok(want.clone()),
                    "{at}"
                );
                assert_eq!(
                    stream_body(b"hello world", Framing::Length(5), 1000, feed, ask),
                    Ok(b"hello".to_vec()),
                    "{at}"
                );
                assert_eq!(
                    stream_body(b"to the end", Framing::ToClose, 1000, feed, ask),
                    Ok(b"to the end".to_vec()),
                    "{at}"
                );
            }
        }
        assert_eq!(
            stream_body(b"ignored", Framing::Empty, 10, 8, 8),
            Ok(vec![])
        );
        // Much more than an in-memory answer may hold.
        let big: Vec<u8> = (0..3 * MAX_BODY).map(|i| (i % 253) as u8).collect();
        let mut raw = Vec::new();
        for piece in big.chunks(70_001) {
            raw.extend_from_slice(format!("{:X}\r\n", piece.len()).as_bytes());
            raw.extend_from_slice(piece);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(
            stream_body(&raw, Framing::Chunked, u64::MAX, 8192, 65536),
            Ok(big.clone())
        );
        // What ends early, breaks the framing or passes the limit fails.
        let failing: [(&[u8], Framing, u64, &str); 8] = [
            (
                b"5\r\nab",
                Framing::Chunked,
                100,
                "ended inside a chunk (3 bytes",
            ),
            (
                b"2\r\nab\r\n",
                Framing::Chunked,
                100,
                "without its final chunk",
            ),
            (
                b"2\r\nabXY1\r\nc\r\n0\r\n\r\n",
                Framing::Chunked,
                100,
                "not followed by CRLF",
            ),
            (b"zz\r\n", Framing::Chunked, 100, "chunk size"),
            (b"abc", Framing::Length(10), 100, "ended after 3 of 10"),
            (
                b"65\r\n",
                Framing::Chunked,
                100,
                "larger than the 100 bytes",
            ),
            (
                b"3\r\nabc\r\n3\r\nabc\r\n0\r\n\r\n",
                Framing::Chunked,
                5,
                "larger than the 5",
            ),
            (b"abcdef", Framing::ToClose, 5, "larger than the 5"),
        ];
        for (raw, framing, max, words) in failing {
            for feed in [1, 4, 64] {
                let got = stream_body(raw, framing, max, feed, 2);
                assert!(
                    got.as_ref().is_err_and(|e| e.contains(words)),
                    "{:?} (feed {feed}): {got:?}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
    }

    fn stream_target(
        pieces: usize,
        size: usize,
        pause: Duration,
    ) -> (Ca, Target, JoinHandle<Vec<String>>) {
        let ca = ca("etcd-ca");
        let leaf = server_leaf(&ca);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Stream {
                pieces,
                size,
                pause,
            },
        );
        (ca, target, server)
    }

    #[test]
    fn a_streamed_answer_may_be_large_and_slow_while_it_progresses() {
        // 3 MiB: more than https_request takes, read here as it comes.
        let (ca, target, server) = stream_target(48, 65536, Duration::ZERO);
        let limits = StreamLimits {
            idle: Duration::from_secs(5),
            max_body: 4 << 20,
        };
        let mut resp = https_stream(
            &target,
            "POST",
            "/v3/maintenance/snapshot",
            Some(b"{}"),
            &opts(&[&ca]),
            limits,
        )
        .expect("stream");
        assert_eq!(
            (resp.status, resp.probe.trust.clone()),
            (200, Trust::Verified)
        );
        let mut buf = vec![0u8; 50_000];
        let (mut i, mut at) = (0, 0);
        loop {
            let n = resp.body.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                assert_eq!(b, ((i * 65536 + at) % 251) as u8, "byte {at} of piece {i}");
                at += 1;
                if at == 65536 {
                    (i, at) = (i + 1, 0);
                }
            }
        }
        assert_eq!((i, at, resp.body.received()), (48, 0, 48 * 65536));
        let requests = server.join().expect("server thread");
        assert!(
            requests[0].starts_with("POST /v3/maintenance/snapshot HTTP/1.1\r\n"),
            "{requests:?}"
        );
        assert!(requests[0].ends_with("\r\n\r\n{}"), "{requests:?}");

        // Slower in all (7 pieces, 300 ms apart) than the request timeout, never idle for the
        // idle budget: read whole.
        let (ca, target, server) = stream_target(7, 1000, Duration::from_millis(300));
        let mut o = opts(&[&ca]);
        o.timeout = Duration::from_secs(1);
        let limits = StreamLimits {
            idle: Duration::from_secs(5),
            max_body: 1 << 20,
        };
        let mut resp = https_stream(&target, "POST", "/", None, &o, limits).expect("stream");
        let mut body = Vec::new();
        resp.body.read_to_end(&mut body).expect("progressing body");
        let want: Vec<u8> = (0..7).flat_map(|i| stream_piece(i, 1000)).collect();
        assert_eq!(body, want);
        server.join().expect("server thread");
    }

    #[test]
    fn a_streamed_answer_that_stalls_or_grows_too_large_fails() {
        let (ca, target, server) = stream_target(2, 1000, Duration::from_secs(2));
        let limits = StreamLimits {
            idle: Duration::from_millis(500),
            max_body: 1 << 20,
        };
        let mut resp =
            https_stream(&target, "POST", "/", None, &opts(&[&ca]), limits).expect("stream");
        let mut body = Vec::new();
        let err = resp.body.read_to_end(&mut body).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(
            err.to_string()
                .contains("no byte of the response body for 500ms (after "),
            "{err}"
        );
        drop(resp);
        server.join().expect("server thread");

        let (ca, target, server) = stream_target(4, 1000, Duration::ZERO);
        let limits = StreamLimits {
            idle: Duration::from_secs(5),
            max_body: 2500,
        };
        let mut resp =
            https_stream(&target, "POST", "/", None, &opts(&[&ca]), limits).expect("stream");
        let err = resp.body.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("larger than the 2500 bytes"),
            "{err}"
        );
        drop(resp);
        server.join().expect("server thread");
    }

    #[test]
    fn bad_requests_are_refused_before_connecting() {
        let target: Target = "https://127.0.0.1:1".parse().expect("target");
        let o = ProbeOptions {
            insecure: true,
            ..ProbeOptions::default()
        };
        for (method, path) in [
            ("GET", "health"),
            ("GET", "/a b"),
            ("get", "/"),
            ("GET", "/\r\nX: y"),
        ] {
            assert!(matches!(
                https_request(&target, method, path, None, &o),
                Err(ProbeError::InvalidOptions { .. })
            ));
        }
    }
}
