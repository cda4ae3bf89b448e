//! Checks on a freshly built certificate before anything is written: the CA's signature, the
//! exact SAN set, the key, everything else unchanged, and for serving certificates a rustls
//! (webpki) verification for every name and address it must serve. First of all, a strict
//! re-parse: x509-parser's structure validators and the checks Go's x509 parser makes (the
//! parser kube-apiserver loads it with), so a certificate Go would refuse is never written.

use super::error::Error;
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::pki::cert::CertInfo;
use crate::spec::san::{from_cert, San};

pub struct Expected<'a> {
    pub original: &'a CertInfo,
    /// The DER Name it must carry (the original's, unless a new identity is issued).
    pub subject: &'a [u8],
    pub sans: &'a [San],
    pub spki_key: &'a crate::pki::key::PublicKeyId,
    pub now: i64,
}

pub fn check(new_der: &[u8], ca: &CertInfo, want: &Expected) -> Result<CertInfo, Error> {
    strict(new_der)
        .map_err(|e| Error::Verify(format!("refusing to write: the new certificate {e}")))?;
    let new = CertInfo::from_der(new_der)
        .map_err(|e| Error::Verify(format!("the new certificate does not parse ({e})")))?;
    let fail = |what: &str| {
        Err(Error::Verify(format!(
            "refusing to write: the new certificate {what}"
        )))
    };
    if !new.is_signed_by(ca) {
        return fail("does not verify against the CA");
    }
    if new.subject_raw != want.subject {
        return fail("has a different subject");
    }
    let mut got = from_cert(&new.sans)?;
    let mut wanted = want.sans.to_vec();
    got.sort();
    wanted.sort();
    if got != wanted {
        return fail("does not carry exactly the intended SANs");
    }
    if &new.public_key != want.spki_key {
        return fail("is not for the intended key");
    }
    if new.key_usage != want.original.key_usage
        || new.ext_key_usage != want.original.ext_key_usage
        || new.is_ca != want.original.is_ca
    {
        return fail("changed its key usage, extended key usage or CA flag");
    }
    if new.serves_tls() {
        verify_names(new_der, ca, want.sans, want.now)?;
    }
    Ok(new)
}

/// A certificate as strict parsers read it: the whole DER one certificate, x509-parser's
/// structure and extension validators without an error, no extension twice, and SANs as Go's
/// x509 parser requires them (DNS names and emails ASCII, URIs that parse, IPs of 4 or 16 bytes).
pub fn strict(der: &[u8]) -> Result<(), Error> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    use x509_parser::prelude::FromDer;
    use x509_parser::validate::{
        Validator, VecLogger, X509ExtensionsValidator, X509StructureValidator,
    };
    let (rest, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| Error::Verify(format!("does not parse ({e})")))?;
    if !rest.is_empty() {
        return Err(Error::Verify(format!(
            "has {} bytes after its end",
            rest.len()
        )));
    }
    let mut log = VecLogger::default();
    let ok = X509StructureValidator.validate(&cert, &mut log)
        & X509ExtensionsValidator.validate(&cert.extensions(), &mut log);
    if !ok || !log.errors().is_empty() {
        return Err(Error::Verify(format!(
            "is malformed ({})",
            log.errors().join("; ")
        )));
    }
    if cert.validity().not_after < cert.validity().not_before {
        return Err(Error::Verify("ends before it begins".into()));
    }
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(v) => crate::spec::san::go_parses("DNS", v)?,
                    GeneralName::RFC822Name(v) => crate::spec::san::go_parses("email", v)?,
                    GeneralName::URI(v) => crate::spec::san::go_parses("URI", v)?,
                    GeneralName::IPAddress(b) if b.len() != 4 && b.len() != 16 => {
                        return Err(Error::Verify(format!("has an IP SAN of {} bytes", b.len())))
                    }
                    GeneralName::Invalid(tag, _) => {
                        return Err(Error::Verify(format!(
                            "has an unreadable SAN (tag {})",
                            tag.0
                        )))
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// What a TLS client does: build the path to the CA and match each SAN.
fn verify_names(leaf: &[u8], ca: &CertInfo, sans: &[San], now: i64) -> Result<(), Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.der.clone()))
        .map_err(|e| {
            Error::Verify(format!(
                "the CA certificate is not usable as a trust anchor ({e})"
            ))
        })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| Error::Verify(e.to_string()))?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    let leaf = CertificateDer::from(leaf.to_vec());
    for san in sans {
        let Some(name) = san.dial_name() else {
            continue;
        };
        let server = ServerName::try_from(name.clone())
            .map_err(|e| Error::Verify(format!("`{name}` is not a server name ({e})")))?;
        verifier
            .verify_server_cert(&leaf, &[], &server, &[], at)
            .map_err(|e| Error::Verify(format!("refusing to write: a TLS client connecting to {name} would reject the new certificate ({e})")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apiserver_der() -> Vec<u8> {
        let pem = include_str!("../../fixtures/kubeadm/etc/kubernetes/pki/apiserver.crt");
        pem::parse(pem).unwrap().into_contents()
    }

    /// `der` with its first `from` replaced by `to` (same length, so the DER stays well formed).
    fn patched(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = der.windows(from.len()).position(|w| w == from).unwrap();
        let mut out = der.to_vec();
        out[at..at + from.len()].copy_from_slice(to);
        out
    }

    #[test]
    fn strict_reparse_refuses_what_go_would_not_parse() {
        let der = apiserver_der();
        strict(&der).unwrap();
        // A DNS SAN with a non-ASCII character (valid UTF-8): Go refuses a non-IA5 SAN.
        let err = strict(&patched(&der, b"master1", "maste\u{e4}".as_bytes()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not ASCII"), "{err}");
        // Not UTF-8 at all.
        assert!(strict(&patched(&der, b"master1", b"maste\xe4\xe4")).is_err());
        // Trailing bytes after the certificate.
        let mut long = der.clone();
        long.push(0);
        assert!(strict(&long)
            .unwrap_err()
            .to_string()
            .contains("after its end"));
    }
}
