//! Signature checks for the linker: a CA's public key parsed once (by aws-lc for the common
//! algorithms, x509-parser's generic check otherwise) and the signed parts of a certificate.

use std::sync::OnceLock;

use aws_lc_rs::signature::ParsedPublicKey;
use x509_parser::asn1_rs::{Any, BitString};
use x509_parser::prelude::FromDer;
use x509_parser::verify::verify_signature;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// A CA's public key, to check the signatures of the certificates it may have issued.
pub(super) struct Signer<'a> {
    spki: SubjectPublicKeyInfo<'a>,
    /// aws-lc's parsed key for the first common algorithm it is asked to check (an RSA key
    /// keeps its Montgomery context), or `None` when aws-lc rejects the key for it.
    parsed: OnceLock<(Common, Option<ParsedPublicKey>)>,
}

/// The signature algorithms of nearly every certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Common {
    RsaSha256,
    RsaSha384,
    RsaSha512,
    EcdsaP256Sha256,
    EcdsaP256Sha384,
    EcdsaP384Sha256,
    EcdsaP384Sha384,
    Ed25519,
}

impl Common {
    /// The algorithm x509-parser's `verify_signature` checks `signature` with for a key like
    /// `issuer`, when it is a common one.
    fn of(signature: &AlgorithmIdentifier, issuer: &SubjectPublicKeyInfo) -> Option<Common> {
        use x509_parser::oid_registry::*;
        let oid = &signature.algorithm;
        let curve = || {
            let params = issuer.algorithm.parameters.as_ref()?;
            let curve = params.as_oid().ok()?;
            Some((curve == OID_EC_P256, curve == OID_NIST_EC_P384))
        };
        Some(if *oid == OID_PKCS1_SHA256WITHRSA {
            Common::RsaSha256
        } else if *oid == OID_PKCS1_SHA384WITHRSA {
            Common::RsaSha384
        } else if *oid == OID_PKCS1_SHA512WITHRSA {
            Common::RsaSha512
        } else if *oid == OID_SIG_ECDSA_WITH_SHA256 {
            match curve()? {
                (true, _) => Common::EcdsaP256Sha256,
                (_, true) => Common::EcdsaP384Sha256,
                _ => return None,
            }
        } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
            match curve()? {
                (true, _) => Common::EcdsaP256Sha384,
                (_, true) => Common::EcdsaP384Sha384,
                _ => return None,
            }
        } else if *oid == OID_SIG_ED25519 {
            Common::Ed25519
        } else {
            return None;
        })
    }

    fn algorithm(self) -> &'static dyn aws_lc_rs::signature::VerificationAlgorithm {
        use aws_lc_rs::signature::*;
        match self {
            Common::RsaSha256 => &RSA_PKCS1_2048_8192_SHA256,
            Common::RsaSha384 => &RSA_PKCS1_2048_8192_SHA384,
            Common::RsaSha512 => &RSA_PKCS1_2048_8192_SHA512,
            Common::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1,
            Common::EcdsaP256Sha384 => &ECDSA_P256_SHA384_ASN1,
            Common::EcdsaP384Sha256 => &ECDSA_P384_SHA256_ASN1,
            Common::EcdsaP384Sha384 => &ECDSA_P384_SHA384_ASN1,
            Common::Ed25519 => &ED25519,
        }
    }
}

impl<'a> Signer<'a> {
    pub(super) fn new(spki: SubjectPublicKeyInfo<'a>) -> Self {
        Signer {
            spki,
            parsed: OnceLock::new(),
        }
    }

    /// Whether this key made `signature` over `tbs`: what x509-parser's `verify_signature`
    /// says, with the key parsed once rather than for every certificate.
    pub(super) fn signed(
        &self,
        tbs: &[u8],
        algorithm: &AlgorithmIdentifier,
        signature: &BitString,
    ) -> bool {
        if let Some(common) = Common::of(algorithm, &self.spki) {
            let (first, key) = self.parsed.get_or_init(|| {
                let key = &self.spki.subject_public_key.data;
                (common, ParsedPublicKey::new(common.algorithm(), key).ok())
            });
            if *first == common {
                return key
                    .as_ref()
                    .is_some_and(|k| k.verify_sig(tbs, &signature.data).is_ok());
            }
        }
        verify_signature(&self.spki, algorithm, signature, tbs).is_ok()
    }
}

/// The signed bytes of a certificate (its TBSCertificate), its signature algorithm and its
/// signature, read without parsing the rest: what a signature check needs.
pub(super) fn signed_parts(der: &[u8]) -> Option<(&[u8], AlgorithmIdentifier<'_>, BitString<'_>)> {
    let (_, certificate) = Any::from_der(der).ok()?;
    let body = certificate.data;
    let (rest, _) = Any::from_der(body).ok()?;
    let tbs = &body[..body.len() - rest.len()];
    let (rest, algorithm) = AlgorithmIdentifier::from_der(rest).ok()?;
    let (_, signature) = BitString::from_der(rest).ok()?;
    Some((tbs, algorithm, signature))
}
