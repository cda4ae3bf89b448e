//! Public keys: algorithm and size ([`KeyAlgo`]), the canonical identity that pairs a key with
//! its certificate ([`PublicKeyId`]), and the reading of a SubjectPublicKeyInfo. Both
//! [`super::cert`] and [`super::key`] build on this module; it depends on neither.

use super::error::Error;
use serde::Serialize;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

pub const OID_RSA: &str = "1.2.840.113549.1.1.1";
pub const OID_EC: &str = "1.2.840.10045.2.1";
pub const OID_ED25519: &str = "1.3.101.112";
pub(crate) const OID_P256: &str = "1.2.840.10045.3.1.7";
pub(crate) const OID_P384: &str = "1.3.132.0.34";
pub(crate) const OID_P521: &str = "1.3.132.0.35";

/// `{"algo": "rsa|ecdsa|ed25519", "size": N}` — cfssl's `key` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeyAlgo {
    pub algo: String,
    /// RSA modulus bits, or the curve size (256, 384, 521; 256 for Ed25519).
    #[serde(default)]
    pub size: u32,
}

impl KeyAlgo {
    pub fn rsa(bits: u32) -> Self {
        KeyAlgo {
            algo: "rsa".into(),
            size: bits,
        }
    }
    pub fn ecdsa(bits: u32) -> Self {
        KeyAlgo {
            algo: "ecdsa".into(),
            size: bits,
        }
    }
    pub fn ed25519() -> Self {
        KeyAlgo {
            algo: "ed25519".into(),
            size: 256,
        }
    }
    pub fn other(oid: &str) -> Self {
        KeyAlgo {
            algo: oid.into(),
            size: 0,
        }
    }
}

impl std::fmt::Display for KeyAlgo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.algo.as_str() {
            "rsa" => write!(f, "RSA-{}", self.size),
            "ecdsa" => write!(f, "ECDSA-P{}", self.size),
            "ed25519" => f.write_str("Ed25519"),
            other => f.write_str(other),
        }
    }
}

/// The public key in a canonical form: two keys pair exactly when their ids are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicKeyId(Vec<u8>);

impl PublicKeyId {
    pub fn rsa(modulus: &[u8], exponent: &[u8]) -> Self {
        let n = strip_zeros(modulus);
        let e = strip_zeros(exponent);
        let mut id = vec![b'r'];
        id.extend_from_slice(&(n.len() as u32).to_be_bytes());
        id.extend_from_slice(n);
        id.extend_from_slice(e);
        PublicKeyId(id)
    }
    pub fn ec(point: &[u8]) -> Self {
        PublicKeyId([b"e".as_slice(), point].concat())
    }
    pub fn ed25519(key: &[u8]) -> Self {
        PublicKeyId([b"d".as_slice(), key].concat())
    }
    pub fn other(raw: &[u8]) -> Self {
        PublicKeyId([b"?".as_slice(), raw].concat())
    }
}

/// Algorithm, size and matching identity of a SubjectPublicKeyInfo.
pub fn describe_spki(spki: &SubjectPublicKeyInfo) -> Result<(KeyAlgo, PublicKeyId), Error> {
    let oid = spki.algorithm.algorithm.to_id_string();
    let raw = spki.subject_public_key.data.as_ref();
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok((
            KeyAlgo::rsa(bit_len(rsa.modulus)),
            PublicKeyId::rsa(rsa.modulus, rsa.exponent),
        )),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let size = curve_bits(&curve).unwrap_or(point.key_size() as u32);
            Ok((KeyAlgo::ecdsa(size), PublicKeyId::ec(point.data())))
        }
        _ if oid == OID_ED25519 => Ok((KeyAlgo::ed25519(), PublicKeyId::ed25519(raw))),
        _ => Ok((KeyAlgo::other(&oid), PublicKeyId::other(raw))),
    }
}

pub fn curve_bits(oid: &str) -> Option<u32> {
    match oid {
        OID_P256 => Some(256),
        OID_P384 => Some(384),
        OID_P521 => Some(521),
        _ => None,
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Bit length of a big-endian unsigned integer.
pub fn bit_len(bytes: &[u8]) -> u32 {
    let b = strip_zeros(bytes);
    match b.first() {
        None => 0,
        Some(first) => (b.len() as u32 - 1) * 8 + (8 - first.leading_zeros()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[]), 0);
    }
}
