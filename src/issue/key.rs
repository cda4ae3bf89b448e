//! Signing and key material: the CA's private key loaded into aws-lc-rs (PKCS#1, PKCS#8 or
//! SEC1), and new leaf keys written in the format of the key they replace.

use super::error::Error;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

use crate::pki::key::{KeyAlgo, KeyFormat};

/// A private key that can sign certificates. Its bytes never leave aws-lc-rs except when a new
/// leaf key is serialised into a bundle file.
pub enum SigningKey {
    Rsa(Box<aws_lc_rs::rsa::KeyPair>),
    Ecdsa(Box<EcdsaKeyPair>, u32),
    Ed25519(Box<Ed25519KeyPair>),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.algo())
    }
}

impl SigningKey {
    /// Loads a PEM private key block. Encrypted keys are refused with a clear message.
    pub fn from_pem_block(label: &str, der: &[u8], encrypted: bool) -> Result<SigningKey, Error> {
        let info = crate::pki::key::read_key_block(label, der, encrypted)?;
        if info.format.is_encrypted() {
            return Err(Error::Key("expected an unencrypted private key, found an encrypted one (decrypt it first, e.g. `openssl pkey -in KEY -out PLAIN`)".into()));
        }
        if !info.format.is_private() {
            return Err(Error::Key(format!(
                "expected a private key, found a `{label}` block"
            )));
        }
        let algo = info
            .algo
            .ok_or_else(|| Error::Key("key without algorithm".into()))?;
        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            Error::Key(format!("private key rejected by aws-lc ({e})"))
        };
        match (algo.algo.as_str(), info.format) {
            ("rsa", KeyFormat::Pkcs1) => aws_lc_rs::rsa::KeyPair::from_der(der)
                .map(|k| SigningKey::Rsa(Box::new(k)))
                .map_err(rejected),
            ("rsa", KeyFormat::Pkcs8) => aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                .map(|k| SigningKey::Rsa(Box::new(k)))
                .map_err(rejected),
            ("ecdsa", format) => {
                let alg = ecdsa_alg(algo.size)?;
                let pair = if format == KeyFormat::Pkcs8 {
                    EcdsaKeyPair::from_pkcs8(alg, der)
                } else {
                    EcdsaKeyPair::from_private_key_der(alg, der)
                };
                pair.map(|k| SigningKey::Ecdsa(Box::new(k), algo.size))
                    .map_err(rejected)
            }
            ("ed25519", _) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(|k| SigningKey::Ed25519(Box::new(k)))
                .map_err(rejected),
            (other, _) => Err(Error::Key(format!(
                "expected an RSA, ECDSA or Ed25519 key, found {other}"
            ))),
        }
    }

    /// A fresh key of `algo`.
    pub fn generate(algo: &KeyAlgo) -> Result<SigningKey, Error> {
        let failed = |_| Error::Key(format!("could not generate a {algo} key"));
        match algo.algo.as_str() {
            "rsa" => {
                let size = match algo.size {
                    2048 => aws_lc_rs::rsa::KeySize::Rsa2048,
                    3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                    4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
                    8192 => aws_lc_rs::rsa::KeySize::Rsa8192,
                    other => {
                        return Err(Error::Key(format!(
                            "expected an RSA size of 2048, 3072, 4096 or 8192, found {other}"
                        )))
                    }
                };
                aws_lc_rs::rsa::KeyPair::generate(size)
                    .map(|k| SigningKey::Rsa(Box::new(k)))
                    .map_err(failed)
            }
            "ecdsa" => EcdsaKeyPair::generate(ecdsa_alg(algo.size)?)
                .map(|k| SigningKey::Ecdsa(Box::new(k), algo.size))
                .map_err(failed),
            "ed25519" => Ed25519KeyPair::generate()
                .map(|k| SigningKey::Ed25519(Box::new(k)))
                .map_err(failed),
            other => Err(Error::Key(format!(
                "expected rsa, ecdsa or ed25519, found `{other}`"
            ))),
        }
    }

    pub fn algo(&self) -> KeyAlgo {
        match self {
            SigningKey::Rsa(k) => KeyAlgo::rsa(k.public_modulus_len() as u32 * 8),
            SigningKey::Ecdsa(_, size) => KeyAlgo::ecdsa(*size),
            SigningKey::Ed25519(_) => KeyAlgo::ed25519(),
        }
    }

    /// The DER SubjectPublicKeyInfo of the key.
    pub fn spki_der(&self) -> Result<Vec<u8>, Error> {
        let err = |_| Error::Key("cannot encode the public key".into());
        Ok(match self {
            SigningKey::Rsa(k) => k.public_key().as_der().map_err(err)?.as_ref().to_vec(),
            SigningKey::Ecdsa(k, _) => k.public_key().as_der().map_err(err)?.as_ref().to_vec(),
            SigningKey::Ed25519(k) => k.public_key().as_der().map_err(err)?.as_ref().to_vec(),
        })
    }

    /// The AlgorithmIdentifier of signatures this key makes (SHA-256 for RSA, the curve's hash for
    /// ECDSA, as cfssl and kubeadm choose).
    pub fn signature_algorithm(&self) -> &'static [u8] {
        match self {
            // sha256WithRSAEncryption, NULL parameters
            SigningKey::Rsa(_) => &[
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00,
            ],
            // ecdsa-with-SHA256 / SHA384 / SHA512
            SigningKey::Ecdsa(_, 256) => &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ],
            SigningKey::Ecdsa(_, 384) => &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
            ],
            SigningKey::Ecdsa(_, _) => &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
            ],
            // Ed25519
            SigningKey::Ed25519(_) => &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
        }
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::Rsa(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| Error::Key("RSA signing failed".into()))?;
                Ok(sig)
            }
            SigningKey::Ecdsa(k, _) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Key("ECDSA signing failed".into())),
            SigningKey::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    /// The private key as PEM in `format` (the format of the file it replaces). Only used to
    /// write a new leaf key into a bundle.
    pub fn to_pem(&self, format: KeyFormat) -> Result<String, Error> {
        let err = |_| Error::Key("cannot encode the private key".into());
        let pkcs8: Vec<u8> = match self {
            SigningKey::Rsa(k) => AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(k.as_ref())
                .map_err(err)?
                .as_ref()
                .to_vec(),
            SigningKey::Ecdsa(k, _) => k.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
            SigningKey::Ed25519(k) => k.to_pkcs8v1().map_err(err)?.as_ref().to_vec(),
        };
        let (label, der) = match (format, self) {
            (KeyFormat::Pkcs1, SigningKey::Rsa(_)) => {
                use pkcs8::der::Decode;
                let info = pkcs8::PrivateKeyInfoRef::from_der(&pkcs8)
                    .map_err(|e| Error::Key(e.to_string()))?;
                ("RSA PRIVATE KEY", info.private_key.as_bytes().to_vec())
            }
            (KeyFormat::Sec1, SigningKey::Ecdsa(k, _)) => {
                let sec1 =
                    AsDer::<aws_lc_rs::encoding::EcPrivateKeyRfc5915Der>::as_der(&k.private_key())
                        .map_err(err)?;
                ("EC PRIVATE KEY", sec1.as_ref().to_vec())
            }
            _ => ("PRIVATE KEY", pkcs8),
        };
        Ok(pem::encode(&pem::Pem::new(label, der)))
    }
}

fn ecdsa_alg(size: u32) -> Result<&'static signature::EcdsaSigningAlgorithm, Error> {
    Ok(match size {
        256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        other => {
            return Err(Error::Key(format!(
                "expected an ECDSA curve size of 256, 384 or 521, found {other}"
            )))
        }
    })
}
