//! The `switch` stage as values: a leaf the old CA signed, signed again by the new CA with
//! everything a client or a server relies on kept (the subject byte for byte, the SANs, the key
//! usages, the key and its identifier, every other extension) and a new serial and validity
//! (the leaf's own period from now, never past the new CA's end); and a signing CA file made to
//! start with the new CA, the other certificates it held kept after it (a file that is also a
//! trust store goes on trusting the old CA until `finish`).

use std::path::Path;

use super::blocks;
use super::error::Error;
use super::{certs_in, holds};
use crate::issue::build::{self, Changes};
use crate::issue::{verify, Issued, SigningKey, BACKDATE, DAY};
use crate::pki::cert::CertInfo;

/// `original` signed by `ca` (whose key is `key`) at `now`; `at` names it in errors.
pub fn reissue(
    at: &str,
    original: &CertInfo,
    ca: &CertInfo,
    key: &SigningKey,
    now: i64,
) -> Result<Issued, Error> {
    let fail = |why: String| Error::Leaf {
        at: at.to_string(),
        why,
    };
    let sans = crate::spec::san::from_cert(&original.sans).map_err(|e| {
        fail(format!(
            "expected SANs that can be written again, found {e}"
        ))
    })?;
    let not_before = now - BACKDATE;
    let mut not_after = not_before.saturating_add(original.not_after - original.not_before);
    let mut warnings = Vec::new();
    if not_after > ca.not_after {
        warnings.push(format!(
            "validity clamped to the new CA's end, {}",
            crate::duration::rfc3339(ca.not_after)
        ));
        not_after = ca.not_after;
    }
    if not_after < now + DAY {
        return Err(fail(format!(
            "expected it to stay valid for at least a day, found it would end at {}",
            crate::duration::rfc3339(not_after)
        )));
    }
    let spki = build::spki_of(original).map_err(|e| fail(e.to_string()))?;
    let serial = build::random_serial().map_err(|e| fail(e.to_string()))?;
    let changes = Changes {
        subject: None,
        sans: &sans,
        spki: &spki,
        key_kept: true,
        serial: &serial,
        not_before,
        not_after,
    };
    let der = build::build(original, &changes, ca, key).map_err(|e| fail(e.to_string()))?;
    let info = verify::check(
        &der,
        ca,
        &verify::Expected {
            original,
            subject: &original.subject_raw,
            sans: &sans,
            spki_key: &original.public_key,
            now,
        },
    )
    .map_err(|e| fail(e.to_string()))?;
    if info.subject_key_id != original.subject_key_id || info.sans != original.sans {
        return Err(fail(
            "the new certificate would not keep the key identifier and SANs as written".into(),
        ));
    }
    Ok(Issued {
        der,
        info,
        new_key: None,
        warnings,
    })
}

/// A signing CA file (`ca.crt`, `ca.pem`, the `--cluster-signing-cert-file`) made to start
/// with `new`; `None` when it already does. Its other certificates stay after the new CA, in
/// their order, every other byte as it was.
pub fn signer_file(
    path: &Path,
    bytes: &[u8],
    old: &CertInfo,
    new: &CertInfo,
) -> Result<Option<Vec<u8>>, Error> {
    let before = certs_in(bytes);
    if before.first().is_some_and(|c| c.der == new.der) {
        return Ok(None);
    }
    if !holds(&before, old) {
        return Err(Error::Anchor {
            path: path.to_path_buf(),
            expected: format!(
                "the signing file of the CA being replaced (`{}`)",
                old.subject
            ),
            found: "a file without it".into(),
        });
    }
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN CERTIFICATE-----"))
        .ok_or_else(|| Error::Anchor {
            path: path.to_path_buf(),
            expected: "a PEM CA file".into(),
            found: "a DER certificate (convert it to PEM first: openssl x509 -inform der)".into(),
        })?;
    let out = blocks::first(text, new).into_bytes();
    let want: Vec<&[u8]> = [new.der.as_slice()]
        .into_iter()
        .chain(
            before
                .iter()
                .filter(|c| c.der != new.der)
                .map(|c| c.der.as_slice()),
        )
        .collect();
    let after = certs_in(&out);
    let got: Vec<&[u8]> = after.iter().map(|c| c.der.as_slice()).collect();
    if got != want {
        return Err(Error::ReadBack {
            path: path.to_path_buf(),
            why: "the edited file would not read back as the new CA followed by what it held"
                .into(),
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::testkit::{pair, read};

    #[test]
    fn a_leaf_from_the_new_ca_keeps_subject_sans_usages_and_key() {
        let (old, new, key) = pair();
        let now = 1_780_272_000;
        for rel in [
            "etc/kubernetes/pki/apiserver.crt",
            "etc/kubernetes/pki/apiserver-kubelet-client.crt",
            "var/lib/kubelet/pki/kubelet-client-current.pem",
        ] {
            let leaf = certs_in(&read(rel)).remove(0);
            assert!(leaf.is_signed_by(&old));
            let issued = reissue(rel, &leaf, &new, &key, now).unwrap();
            let got = &issued.info;
            assert!(got.is_signed_by(&new) && !got.is_signed_by(&old), "{rel}");
            assert_eq!(got.subject_raw, leaf.subject_raw);
            assert_eq!(got.sans, leaf.sans);
            assert_eq!(got.public_key, leaf.public_key);
            assert_eq!(got.subject_key_id, leaf.subject_key_id);
            assert_eq!(got.key_usage, leaf.key_usage);
            assert_eq!(got.ext_key_usage, leaf.ext_key_usage);
            assert_ne!(got.serial, leaf.serial);
            assert_eq!(got.issuer_raw, new.subject_raw);
        }
    }

    #[test]
    fn a_signing_file_starts_with_the_new_ca_and_keeps_the_old_after_it() {
        let (old, new, _) = pair();
        let path = Path::new("ca.crt");
        let bytes = read("etc/kubernetes/pki/ca.crt");
        // As the trust stage leaves it: old, then new.
        let super::super::trust::FileVerdict::Add(trusted) =
            super::super::trust::trust_file(&bytes, &old, &new).unwrap()
        else {
            panic!("expected an edit")
        };
        let out = signer_file(path, &trusted, &old, &new).unwrap().unwrap();
        let held = certs_in(&out);
        assert_eq!(held.len(), 2);
        assert_eq!((&held[0].der, &held[1].der), (&new.der, &old.der));
        assert!(signer_file(path, &out, &old, &new).unwrap().is_none());
        // A signing file that held only the old CA gets the new one before it.
        let out = signer_file(path, &bytes, &old, &new).unwrap().unwrap();
        assert!(out.ends_with(&bytes));
        // Another CA's file is refused.
        let etcd = read("etc/kubernetes/pki/etcd/ca.crt");
        assert!(signer_file(path, &etcd, &old, &new).is_err());
    }
}
