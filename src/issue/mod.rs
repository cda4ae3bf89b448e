//! Reissuing certificates from the cluster CA: the same certificate with an edited SAN set, a new
//! serial and validity, the old key (or a new one), verified before it is handed back.

pub mod build;
pub mod bundle;
pub mod der;
pub mod error;
pub mod key;
pub mod like;
pub mod reissue;
pub mod renew;
pub mod report;
pub mod target;
pub mod verify;

use crate::pki::cert::CertInfo;
use crate::pki::key::{KeyAlgo, PublicKeyId};
use crate::spec::San;
pub use error::Error;
pub use key::SigningKey;

/// cfssl and kubeadm backdate by five minutes for clocks that disagree across masters.
pub const BACKDATE: i64 = 5 * 60;

/// The shortest life a new certificate may have from now.
pub const DAY: i64 = 24 * 60 * 60;

/// A CA able to sign: its certificate and its private key, known to belong together.
pub struct Ca {
    pub info: CertInfo,
    pub location: String,
    key: SigningKey,
}

impl Ca {
    /// Pairs a CA certificate with its key; refuses a key that is not the certificate's, and a
    /// certificate that is not a CA.
    pub fn new(
        info: CertInfo,
        location: String,
        key: SigningKey,
        key_location: &str,
    ) -> Result<Ca, Error> {
        if !info.is_ca {
            return Err(Error::Sign(format!("`{location}`: expected a CA certificate (basicConstraints CA:TRUE), found a leaf ({})", info.subject)));
        }
        let spki = spki_id(&key.spki_der()?)?;
        if spki != info.public_key {
            return Err(Error::Sign(format!(
                "`{key_location}`: expected the private key of CA `{}` ({location}), found a different key ({})",
                info.subject,
                key.algo()
            )));
        }
        Ok(Ca {
            info,
            location,
            key,
        })
    }
}

/// Whether to keep the certificate's public key or make a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPolicy {
    Keep,
    New(KeyAlgo),
}

pub struct Request<'a> {
    pub original: &'a CertInfo,
    pub sans: &'a [San],
    pub policy: KeyPolicy,
    /// Seconds; default: the original's validity period.
    pub validity: Option<i64>,
    pub now: i64,
}

pub struct Issued {
    pub der: Vec<u8>,
    pub info: CertInfo,
    /// Only with `KeyPolicy::New`.
    pub new_key: Option<SigningKey>,
    pub warnings: Vec<String>,
}

/// Signs `req.original` again with the edit applied, and verifies the result.
pub fn sign(ca: &Ca, req: &Request) -> Result<Issued, Error> {
    sign_as(ca, req, None)
}

/// [`sign`], the certificate made for `subject` (a DER Name) instead of the original's:
/// `certs issue --like`, a new identity made like an existing certificate.
pub fn sign_as(ca: &Ca, req: &Request, subject: Option<&[u8]>) -> Result<Issued, Error> {
    if ca.info.not_after <= req.now {
        return Err(Error::Sign(format!(
            "CA `{}` ({}) expired at {}: renew the CA first",
            ca.info.subject,
            ca.location,
            crate::duration::rfc3339(ca.info.not_after)
        )));
    }
    if ca.info.not_before > req.now {
        return Err(Error::Sign(format!(
            "CA `{}` ({}) is not valid until {}: a certificate it signs now would not verify",
            ca.info.subject,
            ca.location,
            crate::duration::rfc3339(ca.info.not_before)
        )));
    }
    // An absent keyUsage allows any use; a present one must allow signing certificates.
    if !ca.info.key_usage.is_empty() && !ca.info.key_usage.iter().any(|u| u == "cert sign") {
        return Err(Error::Sign(format!(
            "expected CA `{}` ({}) to have keyUsage keyCertSign, found only {}: certificates it signs would not verify",
            ca.info.subject,
            ca.location,
            ca.info.key_usage.join(", ")
        )));
    }
    if !req.original.is_signed_by(&ca.info) {
        return Err(Error::Sign(format!(
            "expected a certificate signed by CA `{}` ({}), found one issued by `{}` that this CA's key did not sign",
            ca.info.subject, ca.location, req.original.issuer
        )));
    }
    let mut warnings = Vec::new();
    let not_before = req.now - BACKDATE;
    let wanted = req
        .validity
        .unwrap_or(req.original.not_after - req.original.not_before);
    let mut not_after = not_before.saturating_add(wanted);
    if not_after > ca.info.not_after {
        warnings.push(format!(
            "validity clamped to the CA's end, {} (asked for until {})",
            crate::duration::rfc3339(ca.info.not_after),
            crate::duration::rfc3339(not_after)
        ));
        not_after = ca.info.not_after;
    }
    // A certificate must be worth installing: valid for at least a day from now.
    if not_after < req.now + DAY {
        let why = if not_after == ca.info.not_after {
            "the CA's own end: renew the CA first"
        } else {
            "give a longer --validity"
        };
        return Err(Error::Sign(format!(
            "expected the new certificate to be valid until at least a day from now, found it would end at {} ({why})",
            crate::duration::rfc3339(not_after)
        )));
    }
    let new_key = match &req.policy {
        KeyPolicy::Keep => None,
        KeyPolicy::New(algo) => Some(SigningKey::generate(algo)?),
    };
    let spki = match &new_key {
        Some(k) => k.spki_der()?,
        None => build::spki_of(req.original)?,
    };
    let serial = build::random_serial()?;
    let changes = build::Changes {
        subject,
        sans: req.sans,
        spki: &spki,
        key_kept: new_key.is_none(),
        serial: &serial,
        not_before,
        not_after,
    };
    let der = build::build(req.original, &changes, &ca.info, &ca.key)?;
    let key_id = spki_id(&spki)?;
    let expected = verify::Expected {
        original: req.original,
        subject: subject.unwrap_or(&req.original.subject_raw),
        sans: req.sans,
        spki_key: &key_id,
        now: req.now,
    };
    let info = verify::check(&der, &ca.info, &expected)?;
    Ok(Issued {
        der,
        info,
        new_key,
        warnings,
    })
}

fn spki_id(spki_der: &[u8]) -> Result<PublicKeyId, Error> {
    use x509_parser::prelude::FromDer;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| Error::Sign(e.to_string()))?;
    crate::pki::spki::describe_spki(&spki)
        .map(|(_, id)| id)
        .map_err(Error::from)
}
