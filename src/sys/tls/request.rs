//! HTTP/1.1 requests over a probed session: refused unless the chain verified (or `insecure`
//! was asked for) and the handshake succeeded; the answer read into memory ([`https_request`])
//! or as it arrives ([`https_stream`]). Also the plain-HTTP `/healthz` GET ([`http_get`]).
//!
//! The framing itself is [`crate::sys::http`]'s; what is here is the connection's side: which
//! failures are the server's late verdict on the handshake, and which are timeouts.

use std::fmt;
use std::io::{self, BufReader, Read, Write};
use std::time::{Duration, Instant};

use rustls::ClientConnection;

use super::net::{connect, is_timeout, DeadlineStream};
use super::session::{describe_peer_error, establish, salvage_alert, Session};
use super::{HttpResponse, Probe, ProbeError, ProbeOptions, Target, Trust};
use crate::sys::http::{read_head, read_response, BodyReader, Framing, HttpFailure};

/// `GET path` over a verified connection (see [`https_request`]).
pub fn https_get(
    target: &Target,
    path: &str,
    opts: &ProbeOptions,
) -> Result<HttpResponse, ProbeError> {
    https_request(target, "GET", path, None, opts)
}

/// `GET path` over plain HTTP, for the loopback `/healthz` ports that serve no TLS (kubelet
/// 10248, kube-proxy 10256). Returns the status and the body (at most
/// [`MAX_BODY`](super::MAX_BODY) bytes).
pub fn http_get(
    target: &Target,
    path: &str,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), crate::sys::Error> {
    check_request(target, "GET", path).map_err(|e| crate::sys::Error::Http(e.to_string()))?;
    let deadline = Instant::now() + timeout;
    let mut sock =
        connect(target, deadline, timeout).map_err(|e| crate::sys::Error::Http(e.to_string()))?;
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
    sock.write_all(request.as_bytes()).map_err(|e| {
        crate::sys::Error::Http(format!(
            "http://{}: sending the request: {e}",
            target.authority()
        ))
    })?;
    let mut reader = BufReader::new(sock);
    read_response(&mut reader, "GET").map_err(|e| {
        crate::sys::Error::Http(match e {
            HttpFailure::Io(e) => {
                format!("http://{}: reading the response: {e}", target.authority())
            }
            HttpFailure::Protocol(d) => format!("http://{}: {d}", target.authority()),
        })
    })
}

/// A minimal HTTP/1.1 request (`Connection: close`, `Host`, and with a body
/// `Content-Type: application/json` + `Content-Length`) over a connection whose chain verified
/// (or, with `insecure`, was not checked). Reads the status and a body of at most
/// [`MAX_BODY`](super::MAX_BODY) bytes (Content-Length, chunked, or read to close).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::tls::test_server::*;
    use rcgen::ExtendedKeyUsagePurpose;

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
