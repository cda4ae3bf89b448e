//! Building the new certificate: the original's TBSCertificate with a new serial, validity,
//! issuer and SAN list, everything else copied byte for byte — the Subject (attribute order,
//! string types, multi-valued RDNs as Go writes them: rcgen cannot, see rustls/rcgen#81), the key
//! unless a new one is asked for, and every other extension with its criticality.

use super::error::Error;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::der;
use super::key::SigningKey;
use crate::pki::cert::CertInfo;
use crate::spec::San;

const OID_SAN: &str = "2.5.29.17";
const OID_SKI: &str = "2.5.29.14";
const OID_AKI: &str = "2.5.29.35";

/// What changes between the original and the new certificate.
pub struct Changes<'a> {
    /// A DER Name for another subject (`certs issue --like`); `None` keeps the original's.
    pub subject: Option<&'a [u8]>,
    pub sans: &'a [San],
    /// DER SubjectPublicKeyInfo of the new certificate (the original's when the key is kept).
    pub spki: &'a [u8],
    /// Whether the key is the original's: then its SubjectKeyIdentifier is kept as it was
    /// (kubeadm/rcgen and Go derive it differently; a kept key keeps its identifier).
    pub key_kept: bool,
    /// Magnitude bytes of the serial.
    pub serial: &'a [u8],
    pub not_before: i64,
    pub not_after: i64,
}

/// Signs the original certificate again with `changes` applied. Returns the DER.
pub fn build(
    original: &CertInfo,
    changes: &Changes,
    ca: &CertInfo,
    signer: &SigningKey,
) -> Result<Vec<u8>, Error> {
    let (_, orig) =
        X509Certificate::from_der(&original.der).map_err(|e| Error::Sign(e.to_string()))?;
    let (_, ca_cert) =
        X509Certificate::from_der(&ca.der).map_err(|e| Error::Sign(e.to_string()))?;
    let ca_ski = ca_cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => {
                Some(id.0.to_vec())
            }
            _ => None,
        });
    let ski = key_identifier(changes.spki)?;

    let mut extensions: Vec<Vec<u8>> = Vec::new();
    let (mut saw_san, mut saw_ski, mut saw_aki) = (false, false, false);
    for ext in orig.extensions() {
        let oid = ext.oid.to_id_string();
        let encoded = match oid.as_str() {
            OID_SAN => {
                saw_san = true;
                if changes.sans.is_empty() {
                    continue;
                }
                der::extension(
                    ext.oid.as_bytes(),
                    ext.critical,
                    &general_names(changes.sans),
                )
            }
            OID_SKI => {
                saw_ski = true;
                if changes.key_kept {
                    der::extension(ext.oid.as_bytes(), ext.critical, ext.value)
                } else {
                    der::extension(ext.oid.as_bytes(), ext.critical, &der::octet_string(&ski))
                }
            }
            OID_AKI => {
                saw_aki = true;
                match &ca_ski {
                    Some(id) => der::extension(ext.oid.as_bytes(), ext.critical, &aki(id)),
                    None => continue,
                }
            }
            _ => der::extension(ext.oid.as_bytes(), ext.critical, ext.value),
        };
        extensions.push(encoded);
    }
    if !saw_san && !changes.sans.is_empty() {
        // RFC 5280 4.2.1.6: critical when the subject is empty.
        let critical = original.subject_rdns().is_empty();
        extensions.push(der::extension(
            &oid_bytes(OID_SAN),
            critical,
            &general_names(changes.sans),
        ));
    }
    if !saw_ski {
        extensions.push(der::extension(
            &oid_bytes(OID_SKI),
            false,
            &der::octet_string(&ski),
        ));
    }
    if let (false, Some(id)) = (saw_aki, &ca_ski) {
        extensions.push(der::extension(&oid_bytes(OID_AKI), false, &aki(id)));
    }

    let sig_alg = signer.signature_algorithm();
    let ext_refs: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
    let tbs = der::seq(&[
        &der::explicit(0, &der::uint(&[2])),
        &der::uint(changes.serial),
        sig_alg,
        &ca.subject_raw,
        &der::seq(&[
            &der::time(changes.not_before)?,
            &der::time(changes.not_after)?,
        ]),
        changes.subject.unwrap_or(&original.subject_raw),
        changes.spki,
        &der::explicit(3, &der::seq(&ext_refs)),
    ]);
    let signature = signer.sign(&tbs)?;
    Ok(der::seq(&[&tbs, sig_alg, &der::bit_string(&signature)]))
}

fn oid_bytes(dotted: &str) -> Vec<u8> {
    // Only the three fixed 2.5.29.x extension OIDs are encoded here.
    let last: u8 = dotted
        .rsplit('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    vec![0x55, 0x1d, last]
}

/// GeneralNames in the given order: dNSName [2], rfc822Name [1], iPAddress [7], URI [6].
fn general_names(sans: &[San]) -> Vec<u8> {
    let names: Vec<Vec<u8>> = sans
        .iter()
        .map(|s| match s {
            San::Dns(d) => der::tlv(0x82, d.as_bytes()),
            San::Email(e) => der::tlv(0x81, e.as_bytes()),
            San::Uri(u) => der::tlv(0x86, u.as_bytes()),
            San::Ip(std::net::IpAddr::V4(v4)) => der::tlv(0x87, &v4.octets()),
            San::Ip(std::net::IpAddr::V6(v6)) => der::tlv(0x87, &v6.octets()),
        })
        .collect();
    let refs: Vec<&[u8]> = names.iter().map(Vec::as_slice).collect();
    der::seq(&refs)
}

/// AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING }
fn aki(id: &[u8]) -> Vec<u8> {
    der::seq(&[&der::tlv(0x80, id)])
}

/// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (what Go and cfssl write).
pub fn key_identifier(spki_der: &[u8]) -> Result<Vec<u8>, Error> {
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| Error::Sign(format!("bad public key ({e})")))?;
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        &spki.subject_public_key.data,
    );
    Ok(digest.as_ref().to_vec())
}

/// The DER SubjectPublicKeyInfo of a certificate.
pub fn spki_of(cert: &CertInfo) -> Result<Vec<u8>, Error> {
    let (_, c) = X509Certificate::from_der(&cert.der).map_err(|e| Error::Sign(e.to_string()))?;
    Ok(c.public_key().raw.to_vec())
}

/// A positive 128-bit random serial (rcgen's default would derive it from the key and repeat).
pub fn random_serial() -> Result<Vec<u8>, Error> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial)
        .map_err(|_| Error::Sign("no randomness for a serial".into()))?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01; // never a leading zero byte: the serial keeps its full length
    Ok(serial.to_vec())
}
