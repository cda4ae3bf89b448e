//! One TLS session of a probe: the client configuration (aws-lc-rs named explicitly, no
//! resumption, the capturing verifier), the handshake driven by hand over a deadline-bound
//! socket, and the reading of its outcome.
//!
//! Hand-written on purpose: the chain is captured before the verdict, and in TLS 1.3 a server's
//! rejection of the client certificate arrives as an alert after the handshake, which
//! [`await_client_auth_verdict`] waits for. No client crate exposes either.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, ClientConfig, ClientConnection, ProtocolVersion, RootCertStore};

use super::net::{connect, is_timeout, DeadlineStream};
use super::verifier::{lock, CapturingVerifier, RecordingClientCert, Seen};
use super::{Probe, ProbeError, ProbeOptions, Target, Trust};
use crate::sys::http::quote;

/// How long to wait, after a TLS 1.3 handshake in which the server asked for a client
/// certificate, for the server's verdict on it (an alert, or its session tickets).
const CLIENT_AUTH_VERDICT_WAIT: Duration = Duration::from_secs(1);

pub(super) struct Session {
    pub(super) conn: ClientConnection,
    pub(super) sock: DeadlineStream,
    pub(super) probe: Probe,
    /// The handshake completed (and no post-handshake rejection was seen).
    pub(super) completed: bool,
    pub(super) client_cert_requested: bool,
    pub(super) had_identity: bool,
}

pub(super) fn establish(target: &Target, opts: &ProbeOptions) -> Result<Session, ProbeError> {
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
pub(super) fn salvage_alert(
    conn: &mut ClientConnection,
    sock: &mut DeadlineStream,
) -> Option<rustls::Error> {
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

pub(super) fn describe_peer_error(
    e: &rustls::Error,
    cert_requested: bool,
    had_identity: bool,
) -> String {
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

#[cfg(test)]
mod tests {
    use crate::sys::tls::test_server::*;
    use crate::sys::tls::{https_get, probe, ProbeError, ProbeOptions, Target, Trust};
    use rcgen::ExtendedKeyUsagePurpose;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;
    use std::time::Duration;

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
}
