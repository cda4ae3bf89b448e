//! `certs rotate-ca`: replacing a CA in stages, each a bundle `certs rollout` installs. Pure:
//! certificates and file texts in, edits and verdicts out; [`crate::cli`] reads the node and
//! writes the bundle.
//!
//! ```text
//! nothing ──trust──► trust anchors hold old+new ──switch──► leaves from the new CA ──finish──► old gone
//! ```
//!
//! - [`ca`]: a new CA made like the old one (its subject with the CN dated, its extensions, its
//!   key type and size, its validity period), self-signed and verified.
//! - [`trust`]: the new CA added to a trust file (a PEM CA file) or to a kubeconfig's
//!   `certificate-authority-data`, the old CA kept first; already there, nothing changes.
//! - [`switch`]: a leaf of the old CA signed again by the new one (subject, SANs, usages and
//!   key kept), and a signing CA file made to start with the new CA.
//! - [`finish`]: the old CA taken out of a trust file or a kubeconfig.
//! - [`stage`]: which stage a node is in, from what its files hold.
//! - [`blocks`]: where each certificate of a PEM text is written; [`error`]: what stops a stage.

pub mod blocks;
pub mod ca;
pub mod error;

pub use error::Error;
pub mod finish;
pub mod stage;
pub mod switch;
#[cfg(test)]
mod testkit;
pub mod trust;

use crate::pki::cert::CertInfo;

/// The certificates of a PEM text, in file order; anything else (keys, garbage) is skipped.
pub fn certs_in(bytes: &[u8]) -> Vec<CertInfo> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return CertInfo::from_der(bytes).into_iter().collect();
    };
    pem::parse_many(text)
        .unwrap_or_default()
        .iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .filter_map(|b| CertInfo::from_der(b.contents()).ok())
        .collect()
}

/// Whether `list` holds `ca` (the same certificate, byte for byte).
pub fn holds(list: &[CertInfo], ca: &CertInfo) -> bool {
    list.iter().any(|c| c.der == ca.der)
}

/// A CA's certificate as PEM.
pub fn pem_of(ca: &CertInfo) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", ca.der.clone())).replace("\r\n", "\n")
}
