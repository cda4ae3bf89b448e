//! The rustls hooks of a probe: a server-certificate verifier that records the chain exactly as
//! presented before it delegates the verdict to webpki (so a rejected or aborted handshake still
//! says what the server showed), and a client-certificate resolver that records that the server
//! asked for one.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::trust::{classify, Trust};

/// What the verifier and the client-certificate resolver observed during one handshake.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub(super) chain: Vec<Vec<u8>>,
    pub(super) trust: Option<Trust>,
    /// Our verifier rejected the chain (the handshake was aborted because of it).
    pub(super) rejected: bool,
    /// The server sent a CertificateRequest.
    pub(super) client_cert_requested: bool,
}

pub(super) fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records the presented chain, then delegates the verdict to webpki (unless insecure).
#[derive(Debug)]
pub(super) struct CapturingVerifier {
    /// `None` with `insecure`.
    pub(super) inner: Option<Arc<WebPkiServerVerifier>>,
    pub(super) provider: Arc<CryptoProvider>,
    pub(super) name: String,
    pub(super) seen: Arc<Mutex<Seen>>,
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
pub(super) struct RecordingClientCert {
    pub(super) identity: Option<Arc<CertifiedKey>>,
    pub(super) seen: Arc<Mutex<Seen>>,
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

#[cfg(test)]
mod tests {
    use crate::sys::tls::test_server::*;
    use crate::sys::tls::{https_get, probe, ProbeOptions, Trust};
    use std::time::Duration;

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
}
