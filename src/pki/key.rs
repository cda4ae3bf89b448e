//! Keys: algorithm and size, the identity used to pair a key with its certificate, and the
//! reading of private keys in the three encodings found on nodes (PKCS#1 from kubeadm, openssl and
//! cfssl RSA; SEC1 from cfssl ECDSA; PKCS#8 elsewhere) plus public keys (`sa.pub`).
//!
//! The public half is taken from the key structure itself (RSA n and e, the EC point stored in
//! SEC1) so that scanning many keys costs no key validation; only EC keys that omit their public
//! point and Ed25519 seeds are loaded into aws-lc-rs to derive it. Private material is never
//! copied out of this module.

use super::error::Error;
use pkcs8::der::{asn1::ObjectIdentifier, Decode};
use serde::Serialize;

pub use super::spki::{bit_len, curve_bits, KeyAlgo, PublicKeyId, OID_EC, OID_ED25519, OID_RSA};
use super::spki::{OID_P256, OID_P384, OID_P521};

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
pub fn read_key_block(label: &str, der: &[u8], encrypted: bool) -> Result<KeyInfo, Error> {
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
                .map_err(|e| Error::Key(format!("not an encrypted PKCS#8 structure ({e})")))?;
            return Ok(KeyInfo {
                format: KeyFormat::EncryptedPkcs8,
                algo: None,
                public_key: None,
            });
        }
        "PUBLIC KEY" => (KeyFormat::PublicKey, read_spki(der)?),
        "RSA PUBLIC KEY" => {
            let key = pkcs1::RsaPublicKey::<pkcs1::UintRef>::from_der(der)
                .map_err(|e| Error::Key(format!("not a PKCS#1 public key ({e})")))?;
            let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
            (
                KeyFormat::RsaPublicKey,
                (KeyAlgo::rsa(bit_len(n)), PublicKeyId::rsa(n, e)),
            )
        }
        other => return Err(Error::Key(format!("`{other}` is not a key label"))),
    };
    Ok(KeyInfo {
        format,
        algo: Some(algo),
        public_key: Some(id),
    })
}

fn read_pkcs1(der: &[u8]) -> Result<(KeyAlgo, PublicKeyId), Error> {
    let key = pkcs1::RsaPrivateKey::<pkcs1::UintRef>::from_der(der)
        .map_err(|e| Error::Key(format!("not a PKCS#1 RSA private key ({e})")))?;
    let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
    Ok((KeyAlgo::rsa(bit_len(n)), PublicKeyId::rsa(n, e)))
}

fn read_sec1(der: &[u8], curve: Option<String>) -> Result<(KeyAlgo, PublicKeyId), Error> {
    let key = sec1::EcPrivateKey::from_der(der)
        .map_err(|e| Error::Key(format!("not a SEC1 EC private key ({e})")))?;
    let curve = key
        .parameters
        .and_then(|p| p.named_curve())
        .map(|oid| oid.to_string())
        .or(curve)
        .ok_or_else(|| Error::Key("EC private key names no curve".into()))?;
    let bits =
        curve_bits(&curve).ok_or_else(|| Error::Key(format!("unsupported EC curve {curve}")))?;
    let point = match key.public_key {
        Some(point) => point.to_vec(),
        None => derive_ec_point(&curve, der)?,
    };
    Ok((KeyAlgo::ecdsa(bits), PublicKeyId::ec(&point)))
}

fn read_pkcs8(der: &[u8]) -> Result<(KeyAlgo, PublicKeyId), Error> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|e| Error::Key(format!("not a PKCS#8 private key ({e})")))?;
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
                .map_err(|e| Error::Key(format!("bad Ed25519 private key ({e})")))?;
            let public = match info.public_key.as_ref().and_then(|k| k.as_bytes()) {
                Some(public) => public.to_vec(),
                None => aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed.as_bytes())
                    .map_err(|e| Error::Key(format!("bad Ed25519 seed ({e})")))
                    .map(|pair| {
                        use aws_lc_rs::signature::KeyPair;
                        pair.public_key().as_ref().to_vec()
                    })?,
            };
            Ok((KeyAlgo::ed25519(), PublicKeyId::ed25519(&public)))
        }
        other => Err(Error::Key(format!(
            "unsupported private key algorithm {other}"
        ))),
    }
}

fn read_spki(der: &[u8]) -> Result<(KeyAlgo, PublicKeyId), Error> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
        .map_err(|e| Error::Key(format!("not a SubjectPublicKeyInfo ({e})")))?;
    super::spki::describe_spki(&spki)
}

/// An EC private key without its public point: let aws-lc-rs compute it.
fn derive_ec_point(curve: &str, sec1_der: &[u8]) -> Result<Vec<u8>, Error> {
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
    let alg = match curve {
        OID_P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        OID_P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        OID_P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        other => return Err(Error::Key(format!("unsupported EC curve {other}"))),
    };
    let pair = EcdsaKeyPair::from_private_key_der(alg, sec1_der)
        .map_err(|e| Error::Key(format!("EC private key rejected ({e})")))?;
    Ok(pair.public_key().as_ref().to_vec())
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
}
