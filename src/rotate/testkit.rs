//! What the stages' unit tests share: the kubeadm fixture's files, and its cluster CA with a
//! successor made for it (2026-06-01).
#![allow(clippy::disallowed_methods)] // tests read fixtures with std::fs

use crate::issue::SigningKey;
use crate::pki::cert::CertInfo;

/// A file of the kubeadm fixture node, by its path under the node's `/`.
pub fn read(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/kubeadm")
            .join(rel),
    )
    .unwrap()
}

/// The fixture's cluster CA, a new CA made like it, and the new CA's key.
pub fn pair() -> (CertInfo, CertInfo, SigningKey) {
    let old = super::certs_in(&read("etc/kubernetes/pki/ca.crt")).remove(0);
    let key = SigningKey::generate(&old.key).unwrap();
    let new = CertInfo::from_der(&super::ca::new_ca(&old, &key, 1_780_272_000).unwrap()).unwrap();
    (old, new, key)
}
