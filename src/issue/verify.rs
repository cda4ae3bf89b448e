//! Checks on a freshly built certificate before anything is written: the CA's signature, the
//! exact SAN set, the key, everything else unchanged, and for serving certificates a rustls
//! (webpki) verification for every name and address it must serve.

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

pub fn check(new_der: &[u8], ca: &CertInfo, want: &Expected) -> Result<CertInfo, String> {
    let new = CertInfo::from_der(new_der)
        .map_err(|e| format!("the new certificate does not parse ({e})"))?;
    let fail = |what: &str| Err(format!("refusing to write: the new certificate {what}"));
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

/// What a TLS client does: build the path to the CA and match each SAN.
fn verify_names(leaf: &[u8], ca: &CertInfo, sans: &[San], now: i64) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.der.clone()))
        .map_err(|e| format!("the CA certificate is not usable as a trust anchor ({e})"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.max(0) as u64));
    let leaf = CertificateDer::from(leaf.to_vec());
    for san in sans {
        let Some(name) = san.dial_name() else {
            continue;
        };
        let server = ServerName::try_from(name.clone())
            .map_err(|e| format!("`{name}` is not a server name ({e})"))?;
        verifier
            .verify_server_cert(&leaf, &[], &server, &[], at)
            .map_err(|e| format!("refusing to write: a TLS client connecting to {name} would reject the new certificate ({e})"))?;
    }
    Ok(())
}
