//! The new CA of a rotation, made like the old one: the old subject with only the CN's value
//! changed to `<old CN without a date>-<YYYYMMDD>` (its string type, the other attributes and
//! their order kept), every extension of the old CA with its criticality (basic constraints, key
//! usage, a SAN such as kubeadm's `DNS:kubernetes`), a new key of the same type and size, the
//! old CA's validity period from now. Self-signed and checked before it is handed back.
//!
//! A distinct CN keeps the two CAs apart by name as well as by key identifier: a leaf's issuer
//! says which CA signed it, for people and for clients that pick a trust anchor by name.

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::issue::build::{key_identifier, random_serial};
use crate::issue::{der, SigningKey, BACKDATE};
use crate::pki::cert::CertInfo;

const OID_SKI: &str = "2.5.29.14";
const OID_AKI: &str = "2.5.29.35";

/// A CN without the date a rotation appended (`kubernetes-20260601` → `kubernetes`).
pub fn base_cn(cn: &str) -> &str {
    match cn.rsplit_once('-') {
        Some((base, tail))
            if !base.is_empty()
                && matches!(tail.len(), 8 | 14)
                && tail.chars().all(|c| c.is_ascii_digit()) =>
        {
            base
        }
        _ => cn,
    }
}

/// The CN of the CA that follows one called `cn`, made at `now`: `<base>-<YYYYMMDD>`, with the
/// time too when that would be the old CN again (a second rotation on one day).
pub fn successor_cn(cn: &str, now: i64) -> String {
    let stamp = crate::duration::rfc3339(now);
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let day = format!("{}-{}", base_cn(cn), &digits[..8.min(digits.len())]);
    if day != cn {
        day
    } else {
        format!("{}-{}", base_cn(cn), &digits[..14.min(digits.len())])
    }
}

/// Whether `cand` is a CA this tool would have made to follow `old`: another CA certificate of
/// the same key type whose subject is `old`'s with only the CN changed, to a CN of the same base.
pub fn is_successor(old: &CertInfo, cand: &CertInfo) -> bool {
    let (Some(old_cn), Some(cn)) = (&old.common_name, &cand.common_name) else {
        return false;
    };
    cand.is_ca
        && cand.der != old.der
        && cand.key.algo == old.key.algo
        && base_cn(cn) == base_cn(old_cn)
        && crate::issue::like::replace_cn(&old.subject_raw, cn)
            .is_ok_and(|(subject, _)| subject == cand.subject_raw)
}

/// A new CA like `old`, with the key `key`, made at `now`. Returns its DER, checked: a CA,
/// self-signed by `key`, with the subject and validity intended.
pub fn new_ca(old: &CertInfo, key: &SigningKey, now: i64) -> Result<Vec<u8>, super::Error> {
    use super::Error;
    let old_cn = old.common_name.as_deref().ok_or_else(|| {
        Error::NewCa(format!(
            "expected the CA being replaced (`{}`) to have a CN to name its successor after, found none; make the new CA yourself and give --new-ca FILE --new-ca-key FILE",
            old.subject
        ))
    })?;
    let cn = successor_cn(old_cn, now);
    let (subject, _) = crate::issue::like::replace_cn(&old.subject_raw, &cn)?;
    let spki = key.spki_der()?;
    let ski = key_identifier(&spki)?;
    let (_, cert) = X509Certificate::from_der(&old.der).map_err(|e| Error::NewCa(e.to_string()))?;
    let mut extensions: Vec<Vec<u8>> = Vec::new();
    let mut saw_ski = false;
    for ext in cert.extensions() {
        let value = match ext.oid.to_id_string().as_str() {
            OID_SKI => {
                saw_ski = true;
                der::octet_string(&ski)
            }
            OID_AKI => der::seq(&[&der::tlv(0x80, &ski)]),
            _ => ext.value.to_vec(),
        };
        extensions.push(der::extension(ext.oid.as_bytes(), ext.critical, &value));
    }
    if !saw_ski {
        extensions.push(der::extension(
            &[0x55, 0x1d, 14],
            false,
            &der::octet_string(&ski),
        ));
    }
    let not_before = now - BACKDATE;
    let not_after = not_before.saturating_add(old.not_after - old.not_before);
    let serial = random_serial()?;
    let sig_alg = key.signature_algorithm();
    let ext_refs: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
    let tbs = der::seq(&[
        &der::explicit(0, &der::uint(&[2])),
        &der::uint(&serial),
        sig_alg,
        &subject,
        &der::seq(&[&der::time(not_before)?, &der::time(not_after)?]),
        &subject,
        &spki,
        &der::explicit(3, &der::seq(&ext_refs)),
    ]);
    let signature = key.sign(&tbs)?;
    let out = der::seq(&[&tbs, sig_alg, &der::bit_string(&signature)]);
    // Read back as any client would.
    let info = CertInfo::from_der(&out)
        .map_err(|e| Error::NewCa(format!("the new CA does not parse ({e})")))?;
    let fail = |what: &str| Err(Error::NewCa(format!("refusing the new CA: {what}")));
    if !info.is_ca {
        return fail("it is not a CA (basicConstraints CA:TRUE)");
    }
    if !info.is_signed_by(&info) {
        return fail("its self-signature does not verify");
    }
    if info.subject_raw != subject || info.issuer_raw != subject {
        return fail("its subject or issuer is not the one intended");
    }
    if info.common_name.as_deref() != Some(cn.as_str()) {
        return fail("its CN is not the one intended");
    }
    if info.not_before != not_before || info.not_after != not_after {
        return fail("its validity is not the one intended");
    }
    if info.key.algo != old.key.algo || info.key.size != old.key.size {
        return fail("its key is not of the old CA's type and size");
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read fixtures with std::fs
mod tests {
    use super::*;

    fn fixture_ca(rel: &str) -> CertInfo {
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(rel),
        )
        .unwrap();
        crate::rotate::certs_in(&bytes).remove(0)
    }

    #[test]
    fn successor_names_are_dated_and_recognised() {
        let now = 1_780_272_000; // 2026-06-01T00:00:00Z
        assert_eq!(successor_cn("kubernetes", now), "kubernetes-20260601");
        assert_eq!(successor_cn("etcd-ca-20250101", now), "etcd-ca-20260601");
        assert_eq!(
            successor_cn("kubernetes-20260601", now),
            "kubernetes-20260601000000"
        );
        assert_eq!(base_cn("front-proxy-ca"), "front-proxy-ca");
        assert_eq!(base_cn("kubernetes-20260601000000"), "kubernetes");
        assert_eq!(base_cn("-20260601"), "-20260601");
    }

    #[test]
    fn a_ca_without_a_cn_gets_no_successor_made_for_it() {
        // A CA named by its other attributes only: nothing to date a successor's CN from.
        let mut old = fixture_ca("kubeadm/etc/kubernetes/pki/ca.crt");
        old.common_name = None;
        old.subject = "O=etcd".into();
        let key = SigningKey::generate(&old.key).unwrap();
        let err = new_ca(&old, &key, 1_780_272_000).unwrap_err().to_string();
        assert!(
            err.starts_with("expected the CA being replaced (`O=etcd`) to have a CN")
                && err.contains("--new-ca FILE --new-ca-key FILE"),
            "{err}"
        );
    }

    #[test]
    fn a_new_ca_keeps_the_old_ones_conventions() {
        let now = 1_780_272_000;
        for rel in [
            "kubeadm/etc/kubernetes/pki/ca.crt",
            "kubeasz-ecdsa/etc/kubernetes/ssl/ca.pem",
        ] {
            let old = fixture_ca(rel);
            let key = SigningKey::generate(&old.key).unwrap();
            let der = new_ca(&old, &key, now).unwrap();
            let new = CertInfo::from_der(&der).unwrap();
            assert!(new.is_ca && new.is_signed_by(&new), "{rel}");
            assert_eq!(new.key, old.key, "{rel}");
            assert_eq!(new.key_usage, old.key_usage, "{rel}");
            assert_eq!(new.path_len, old.path_len, "{rel}");
            assert_eq!(
                new.not_after - new.not_before,
                old.not_after - old.not_before
            );
            assert_eq!(new.not_before, now - BACKDATE);
            assert_ne!(new.subject_key_id, old.subject_key_id);
            assert!(is_successor(&old, &new), "{rel}: {}", new.subject);
            assert!(!is_successor(&old, &old));
            // Only the CN differs.
            let (a, b) = (old.subject_rdns(), new.subject_rdns());
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                for (p, q) in x.iter().zip(y) {
                    assert_eq!(p.0, q.0);
                    if p.0 != "CN" {
                        assert_eq!(p.1, q.1);
                    }
                }
            }
        }
        // Another CA of the node is no successor.
        let etcd = fixture_ca("kubeadm/etc/kubernetes/pki/etcd/ca.crt");
        assert!(!is_successor(
            &fixture_ca("kubeadm/etc/kubernetes/pki/ca.crt"),
            &etcd
        ));
    }
}
