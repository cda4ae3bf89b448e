//! `CertInfo`: an owned summary of one X.509 certificate, read with x509-parser.
//!
//! Everything `inspect` shows and later stages need (names, SANs, key, usages, identifiers) is
//! copied out once, so the borrowed parser structures never escape this module. The DER is kept
//! for signature checks and fingerprints.

use super::error::Error;
use std::net::IpAddr;

use serde::Serialize;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::spki::{describe_spki, KeyAlgo, PublicKeyId};

/// Subject alternative names, typed. Order is the certificate's own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sans {
    pub dns: Vec<String>,
    pub ip: Vec<String>,
    pub email: Vec<String>,
    pub uri: Vec<String>,
    /// Any other GeneralName, described as x509-parser prints it.
    pub other: Vec<String>,
}

impl Sans {
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty()
            && self.ip.is_empty()
            && self.email.is_empty()
            && self.uri.is_empty()
            && self.other.is_empty()
    }

    /// Every SAN as one list, DNS names first then IPs (cfssl certinfo's order), for tables.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.dns
            .iter()
            .chain(&self.ip)
            .chain(&self.email)
            .chain(&self.uri)
            .chain(&self.other)
            .map(String::as_str)
    }
}

/// One certificate, owned.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub der: Vec<u8>,
    /// RFC 4514-like, in the certificate's attribute order: `C=CN, O=k8s, CN=kubernetes`.
    pub subject: String,
    pub issuer: String,
    /// Raw DER of the names: issuer links compare these, never the printed form.
    pub subject_raw: Vec<u8>,
    pub issuer_raw: Vec<u8>,
    /// The common name, when there is one.
    pub common_name: Option<String>,
    /// All organization (O) values, in order.
    pub organizations: Vec<String>,
    /// Uppercase hex of the serial's magnitude, as `openssl x509 -serial` prints it.
    pub serial: String,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub sans: Sans,
    pub key: KeyAlgo,
    pub public_key: PublicKeyId,
    pub is_ca: bool,
    pub path_len: Option<u32>,
    /// cfssl's usage vocabulary: `digital signature`, `key encipherment`, `cert sign` …
    pub key_usage: Vec<String>,
    /// cfssl's vocabulary (`server auth`, `client auth` …) or the dotted OID.
    pub ext_key_usage: Vec<String>,
    /// Uppercase hex joined by `:`, like cfssl certinfo.
    pub subject_key_id: Option<String>,
    pub authority_key_id: Option<String>,
    pub signature_algorithm: String,
    /// Lowercase hex SHA-256 of the DER.
    pub sha256: String,
}

impl CertInfo {
    /// Reads a DER certificate. The error says what x509-parser choked on.
    pub fn from_der(der: &[u8]) -> Result<CertInfo, Error> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| Error::Certificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::TrailingBytes(rest.len()));
        }
        let der = &der[..der.len() - rest.len()];

        let mut sans = Sans::default();
        let mut is_ca = false;
        let mut path_len = None;
        let mut key_usage = Vec::new();
        let mut ext_key_usage = Vec::new();
        let mut subject_key_id = None;
        let mut authority_key_id = None;
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        push_general_name(&mut sans, name);
                    }
                }
                ParsedExtension::BasicConstraints(bc) => {
                    is_ca = bc.ca;
                    path_len = bc.path_len_constraint;
                }
                ParsedExtension::KeyUsage(ku) => key_usage = key_usage_names(ku),
                ParsedExtension::ExtendedKeyUsage(eku) => ext_key_usage = eku_names(eku),
                ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(hex_colon(id.0)),
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    authority_key_id = aki.key_identifier.as_ref().map(|id| hex_colon(id.0));
                }
                _ => {}
            }
        }

        let spki = cert.public_key();
        let (key, public_key) = describe_spki(spki)?;
        let subject = cert.subject();
        let info = CertInfo {
            subject: subject.to_string(),
            issuer: cert.issuer().to_string(),
            subject_raw: subject.as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            common_name: subject
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .map(str::to_string),
            organizations: subject
                .iter_organization()
                .filter_map(|a| a.as_str().ok().map(str::to_string))
                .collect(),
            serial: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            sans,
            key,
            public_key,
            is_ca,
            path_len,
            key_usage,
            ext_key_usage,
            subject_key_id,
            authority_key_id,
            signature_algorithm: signature_name(&cert),
            sha256: sha256_hex(der),
            der: der.to_vec(),
        };
        Ok(info)
    }

    /// The subject's RDNs in order, each a list of (attribute short name or OID, value).
    /// Read from the subject's DER when asked (spec and reissue need it; inspect does not).
    pub fn subject_rdns(&self) -> Vec<Vec<(String, String)>> {
        let Ok((_, name)) = x509_parser::x509::X509Name::from_der(&self.subject_raw) else {
            return Vec::new();
        };
        name.iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| {
                        let value = a
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|_| hex_colon(a.as_slice()));
                        (attribute_name(&a.attr_type().to_id_string()), value)
                    })
                    .collect()
            })
            .collect()
    }

    /// Whether `self` could have issued `child` judging by names and key identifiers alone.
    /// A cheap filter before the signature check, which is what actually decides.
    pub fn may_have_issued(&self, child: &CertInfo) -> bool {
        self.subject_raw == child.issuer_raw
            && match (&child.authority_key_id, &self.subject_key_id) {
                (Some(aki), Some(ski)) => aki == ski,
                _ => true,
            }
    }

    /// Whether `issuer`'s key made this certificate's signature.
    pub fn is_signed_by(&self, issuer: &CertInfo) -> bool {
        let (Ok((_, child)), Ok((_, parent))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        child.verify_signature(Some(parent.public_key())).is_ok()
    }

    pub fn serves_tls(&self) -> bool {
        self.ext_key_usage.iter().any(|u| u == "server auth")
    }
}

pub(crate) fn push_general_name(sans: &mut Sans, name: &GeneralName) {
    match name {
        GeneralName::DNSName(d) => sans.dns.push(d.to_string()),
        GeneralName::IPAddress(bytes) => match ip_from_bytes(bytes) {
            Some(ip) => sans.ip.push(ip.to_string()),
            None => sans.other.push(format!("IP:{}", hex_colon(bytes))),
        },
        GeneralName::RFC822Name(e) => sans.email.push(e.to_string()),
        GeneralName::URI(u) => sans.uri.push(u.to_string()),
        other => sans.other.push(other.to_string()),
    }
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

fn key_usage_names(ku: &x509_parser::extensions::KeyUsage) -> Vec<String> {
    let all = [
        (ku.digital_signature(), "digital signature"),
        (ku.non_repudiation(), "content commitment"),
        (ku.key_encipherment(), "key encipherment"),
        (ku.data_encipherment(), "data encipherment"),
        (ku.key_agreement(), "key agreement"),
        (ku.key_cert_sign(), "cert sign"),
        (ku.crl_sign(), "crl sign"),
        (ku.encipher_only(), "encipher only"),
        (ku.decipher_only(), "decipher only"),
    ];
    all.iter()
        .filter(|(set, _)| *set)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn eku_names(eku: &x509_parser::extensions::ExtendedKeyUsage) -> Vec<String> {
    let mut out: Vec<String> = [
        (eku.any, "any"),
        (eku.server_auth, "server auth"),
        (eku.client_auth, "client auth"),
        (eku.code_signing, "code signing"),
        (eku.email_protection, "email protection"),
        (eku.time_stamping, "timestamping"),
        (eku.ocsp_signing, "ocsp signing"),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .map(|(_, n)| n.to_string())
    .collect();
    out.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    out
}

/// Short names for the attributes cfssl and kubeadm write; others stay dotted OIDs.
fn attribute_name(oid: &str) -> String {
    match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.8" => "ST",
        "2.5.4.7" => "L",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.5" => "SerialNumber",
        "1.2.840.113549.1.9.1" => "E",
        other => other,
    }
    .to_string()
}

fn signature_name(cert: &X509Certificate) -> String {
    let oid = &cert.signature_algorithm.algorithm;
    x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| oid.to_id_string())
}

/// Uppercase hex of an integer's magnitude (leading zero bytes dropped), like openssl's `serial=`.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex(&raw[start..], UPPER, None)
}

pub fn hex_colon(bytes: &[u8]) -> String {
    hex(bytes, UPPER, Some(b':'))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    hex(digest.as_ref(), LOWER, None)
}

const UPPER: &[u8; 16] = b"0123456789ABCDEF";
const LOWER: &[u8; 16] = b"0123456789abcdef";

/// Hex digits of `bytes`, optionally separated, in one allocation: every certificate read
/// formats its serial, key identifiers and fingerprint, so this is on inspect's hot path.
fn hex(bytes: &[u8], digits: &[u8; 16], separator: Option<u8>) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if let (Some(sep), true) = (separator, i > 0) {
            out.push(sep);
        }
        out.push(digits[usize::from(b >> 4)]);
        out.push(digits[usize::from(b & 0x0f)]);
    }
    String::from_utf8(out).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_openssl_style() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8F01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x01, 0x00]), "0100");
        assert_eq!(serial_hex(&[]), "");
    }

    #[test]
    fn hex_forms_match_openssl_and_cfssl() {
        assert_eq!(hex_colon(&[0x0a, 0xff, 0x00]), "0A:FF:00");
        assert_eq!(hex_colon(&[]), "");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn reads_rcgen_certificate() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["kubernetes".into(), "10.96.0.1".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "k8s");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "kube-apiserver");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.self_signed(&key).unwrap();
        let info = CertInfo::from_der(cert.der()).unwrap();
        assert_eq!(info.subject, "O=k8s, CN=kube-apiserver");
        assert_eq!(info.common_name.as_deref(), Some("kube-apiserver"));
        assert_eq!(info.sans.dns, vec!["kubernetes"]);
        assert_eq!(info.sans.ip, vec!["10.96.0.1"]);
        assert_eq!(info.key, KeyAlgo::ecdsa(256));
        assert!(info.serves_tls());
        assert!(info.is_signed_by(&info));
    }

    #[test]
    fn rejects_junk() {
        assert!(CertInfo::from_der(b"\x30\x03\x02\x01\x00").is_err());
        assert!(CertInfo::from_der(b"hello").is_err());
    }
}
