//! The one test TLS server of the probe tests: a CA, leaves it issues, and a rustls server on
//! loopback (ephemeral port) that answers a health request or streams a long chunked body.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};

use super::{ProbeOptions, Target};

pub(super) const HEALTH: &[u8] = br#"{"health":"true"}"#;

pub(super) struct Ca {
    pub(super) cert: CertificateDer<'static>,
    pub(super) issuer: Issuer<'static, KeyPair>,
}

pub(super) fn ca(name: &str) -> Ca {
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

pub(super) fn issue(
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

pub(super) fn server_leaf(ca: &Ca) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    issue(
        ca,
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
        false,
    )
}

pub(super) enum ClientAuth<'a> {
    None,
    Required(&'a Ca),
    Optional(&'a Ca),
}

pub(super) fn server_config(
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
        ClientAuth::Required(ca) => builder.with_client_cert_verifier(client_verifier(ca, false)),
        ClientAuth::Optional(ca) => builder.with_client_cert_verifier(client_verifier(ca, true)),
    };
    builder
        .with_single_cert(vec![leaf.0.clone()], leaf.1.clone_key())
        .expect("server cert")
}

#[derive(Clone, Copy)]
pub(super) enum Reply {
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
pub(super) fn stream_piece(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| ((i * size + j) % 251) as u8).collect()
}

/// A rustls server on loopback for `connections` connections; yields the requests it read.
pub(super) fn serve(
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

pub(super) fn read_request(r: &mut impl Read) -> Option<String> {
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

pub(super) fn answer(
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

pub(super) fn stream_answer(
    tls: &mut rustls::StreamOwned<ServerConnection, TcpStream>,
    pieces: usize,
    size: usize,
    pause: Duration,
) -> io::Result<()> {
    tls.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )?;
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

pub(super) fn opts(roots: &[&Ca]) -> ProbeOptions {
    ProbeOptions {
        roots: Some(roots.iter().map(|c| c.cert.clone()).collect()),
        timeout: Duration::from_secs(5),
        ..ProbeOptions::default()
    }
}

pub(super) fn stream_target(
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
