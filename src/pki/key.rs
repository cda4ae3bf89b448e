//! Keys: algorithm and size, the identity used to pair a key with its certificate, and the
//! reading of private keys in the three encodings found on nodes (PKCS#1 from kubeadm, openssl and
//! cfssl RSA; SEC1 from cfssl ECDSA; PKCS#8 elsewhere) plus public keys (`sa.pub`).
//!
//! The public half is taken from the key structure itself (RSA n and e, the EC point stored in
//! SEC1) so that scanning many keys costs no key validation; only EC keys that omit their public
//! point and Ed25519 seeds are loaded into aws-lc-rs to derive it. Private material is never
//! copied out of this module.

use pkcs8::der::{asn1::ObjectIdentifier, Decode};
use serde::Serialize;

pub const OID_RSA: &str = "1.2.840.113549.1.1.1";
pub const OID_EC: &str = "1.2.840.10045.2.1";
pub const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";

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

/// How a key file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyFormat {
    /// `BEGIN RSA PRIVATE KEY`
    Pkcs1,
    /// `BEGIN PRIVATE KEY`
    Pkcs8,
    /// `BEGIN EC PRIVATE KEY`
    Sec1,
    /// `BEGIN ENCRYPTED PRIVATE KEY`
    EncryptedPkcs8,
    /// A traditional PEM key with `Proc-Type: 4,ENCRYPTED`
    EncryptedPem,
    /// `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo), e.g. kubeadm's `sa.pub`
    PublicKey,
    /// `BEGIN RSA PUBLIC KEY`
    RsaPublicKey,
}

impl KeyFormat {
    pub fn is_private(self) -> bool {
        !matches!(self, KeyFormat::PublicKey | KeyFormat::RsaPublicKey)
    }
    pub fn is_encrypted(self) -> bool {
        matches!(self, KeyFormat::EncryptedPkcs8 | KeyFormat::EncryptedPem)
    }
}

/// What a key block says about itself. Encrypted keys have no algorithm or identity.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub format: KeyFormat,
    pub algo: Option<KeyAlgo>,
    pub public_key: Option<PublicKeyId>,
}

/// Reads one PEM key block. `encrypted` is true when the block carries `Proc-Type: 4,ENCRYPTED`.
pub fn read_key_block(label: &str, der: &[u8], encrypted: bool) -> Result<KeyInfo, String> {
    if encrypted {
        return Ok(KeyInfo {
            format: KeyFormat::EncryptedPem,
            algo: None,
            public_key: None,
        });
    }
    let (format, (algo, id)) = match label {
        "RSA PRIVATE KEY" => (KeyFormat::Pkcs1, read_pkcs1(der)?),
        "EC PRIVATE KEY" => (KeyFormat::Sec1, read_sec1(der, None)?),
        "PRIVATE KEY" => (KeyFormat::Pkcs8, read_pkcs8(der)?),
        "ENCRYPTED PRIVATE KEY" => {
            // Its algorithm and public key are behind the passphrase; only check it is DER.
            pkcs8::der::AnyRef::from_der(der)
                .map_err(|e| format!("not an encrypted PKCS#8 structure ({e})"))?;
            return Ok(KeyInfo {
                format: KeyFormat::EncryptedPkcs8,
                algo: None,
                public_key: None,
            });
        }
        "PUBLIC KEY" => (KeyFormat::PublicKey, read_spki(der)?),
        "RSA PUBLIC KEY" => {
            let key = pkcs1::RsaPublicKey::<pkcs1::UintRef>::from_der(der)
                .map_err(|e| format!("not a PKCS#1 public key ({e})"))?;
            let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
            (
                KeyFormat::RsaPublicKey,
                (KeyAlgo::rsa(bit_len(n)), PublicKeyId::rsa(n, e)),
            )
        }
        other => return Err(format!("`{other}` is not a key label")),
    };
    Ok(KeyInfo {
        format,
        algo: Some(algo),
        public_key: Some(id),
    })
}

fn read_pkcs1(der: &[u8]) -> Result<(KeyAlgo, PublicKeyId), String> {
    let key = pkcs1::RsaPrivateKey::<pkcs1::UintRef>::from_der(der)
        .map_err(|e| format!("not a PKCS#1 RSA private key ({e})"))?;
    let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
    Ok((KeyAlgo::rsa(bit_len(n)), PublicKeyId::rsa(n, e)))
}

fn read_sec1(der: &[u8], curve: Option<String>) -> Result<(KeyAlgo, PublicKeyId), String> {
    let key = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| format!("not a SEC1 EC private key ({e})"))?;
    let curve = key
        .parameters
        .and_then(|p| p.named_curve())
        .map(|oid| oid.to_string())
        .or(curve)
        .ok_or("EC private key names no curve")?;
    let bits = curve_bits(&curve).ok_or_else(|| format!("unsupported EC curve {curve}"))?;
    let point = match key.public_key {
        Some(point) => point.to_vec(),
        None => derive_ec_point(&curve, der)?,
    };
    Ok((KeyAlgo::ecdsa(bits), PublicKeyId::ec(&point)))
}

fn read_pkcs8(der: &[u8]) -> Result<(KeyAlgo, PublicKeyId), String> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|e| format!("not a PKCS#8 private key ({e})"))?;
    let inner = info.private_key.as_bytes();
    match info.algorithm.oid.to_string().as_str() {
        OID_RSA => read_pkcs1(inner),
        OID_EC => {
            let curve = info
                .algorithm
                .parameters
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
                .map(|oid| oid.to_string());
            read_sec1(inner, curve)
        }
        OID_ED25519 => {
            // CurvePrivateKey ::= OCTET STRING (the 32-byte seed), wrapped in the outer one.
            let seed = <&pkcs8::der::asn1::OctetStringRef>::from_der(inner)
                .map_err(|e| format!("bad Ed25519 private key ({e})"))?;
            let public = match info.public_key.as_ref().and_then(|k| k.as_bytes()) {
                Some(public) => public.to_vec(),
                None => aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_bytes())
                    .map_err(|e| format!("bad Ed25519 seed ({e})"))
                    .map(|pair| {
                        use aws_lc_rs::signature::KeyPair;
                        pair.public_key().as_ref().to_vec()
                    })?,
            };
            Ok((KeyAlgo::ed25519(), PublicKeyId::ed25519(&public)))
        }
        other => Err(format!("unsupported private key algorithm {other}")),
    }
}

fn read_spki(der: &[u8]) -> Result<(KeyAlgo, PublicKeyId), String> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| format!("not a SubjectPublicKeyInfo ({e})"))?;
    super::cert::describe_spki(&spki)
}

/// An EC private key without its public point: let aws-lc-rs compute it.
fn derive_ec_point(curve: &str, sec1_der: &[u8]) -> Result<Vec<u8>, String> {
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
    let alg = match curve {
        OID_P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        OID_P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        OID_P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        other => return Err(format!("unsupported EC curve {other}")),
    };
    let pair = EcdsaKeyPair::from_private_key_der(alg, sec1_der)
        .map_err(|e| format!("EC private key rejected ({e})"))?;
    Ok(pair.public_key().as_ref().to_vec())
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

    fn pem_der(pem_text: &str) -> (String, Vec<u8>) {
        let p = pem::parse(pem_text).unwrap();
        (p.tag().to_string(), p.contents().to_vec())
    }

    #[test]
    fn pkcs8_and_spki_of_the_same_key_pair() {
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ] {
            let pair = rcgen::KeyPair::generate_for(alg).unwrap();
            let (label, der) = pem_der(&pair.serialize_pem());
            let private = read_key_block(&label, &der, false).unwrap();
            let (label, der) = pem_der(&pair.public_key_pem());
            let public = read_key_block(&label, &der, false).unwrap();
            assert_eq!(private.format, KeyFormat::Pkcs8);
            assert_eq!(public.format, KeyFormat::PublicKey);
            assert_eq!(private.public_key, public.public_key);
            assert_eq!(private.algo, public.algo);
        }
    }

    #[test]
    fn rsa_pkcs8_pkcs1_agree() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let info = pkcs8::PrivateKeyInfoRef::from_der(pair.serialized_der()).unwrap();
        let pkcs1 = read_key_block("RSA PRIVATE KEY", info.private_key.as_bytes(), false).unwrap();
        let pkcs8 = read_key_block("PRIVATE KEY", pair.serialized_der(), false).unwrap();
        assert_eq!(pkcs1.public_key, pkcs8.public_key);
        assert_eq!(pkcs1.algo, Some(KeyAlgo::rsa(2048)));
    }

    #[test]
    fn wrong_structures_are_errors_not_panics() {
        assert!(read_key_block("RSA PRIVATE KEY", b"\x30\x00", false).is_err());
        assert!(read_key_block("EC PRIVATE KEY", b"junk", false).is_err());
        assert!(read_key_block("PRIVATE KEY", b"", false).is_err());
        assert!(read_key_block("CERTIFICATE", b"", false).is_err());
        let enc = read_key_block("RSA PRIVATE KEY", b"whatever", true).unwrap();
        assert!(enc.format.is_encrypted() && enc.public_key.is_none());
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_len(&[0x01]), 1);
        assert_eq!(bit_len(&[]), 0);
    }
}
