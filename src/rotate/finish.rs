//! The `finish` stage as values: the old CA taken out of a trust file (its PEM block, every
//! other byte kept) and out of a kubeconfig's `certificate-authority-data` (only that line
//! changing). An anchor must still hold the new CA once the old is gone: one that would trust
//! nothing is refused.

use std::path::Path;

use super::error::Error;
use super::trust::CaReference;
use super::{blocks, certs_in, holds};
use crate::edit::bundle::Change;
use crate::pki::cert::CertInfo;

fn subjects(list: &[CertInfo]) -> String {
    list.iter()
        .map(|c| c.subject.clone())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The PEM text without `old`, checked: it reads back as what it held less the old CA, and it
/// still holds `new`. `None` when it does not hold the old CA.
fn drop_old(
    path: &Path,
    what: &str,
    pem: &[u8],
    old: &CertInfo,
    new: &CertInfo,
) -> Result<Option<Vec<u8>>, Error> {
    let before = certs_in(pem);
    if !holds(&before, old) {
        return Ok(None);
    }
    if !holds(&before, new) {
        return Err(Error::Anchor {
            path: path.to_path_buf(),
            expected: format!("{what} holding the new CA beside the old (the trust stage)"),
            found: format!("only {}", subjects(&before)),
        });
    }
    let text = std::str::from_utf8(pem).map_err(|_| Error::Anchor {
        path: path.to_path_buf(),
        expected: format!("{what} in PEM"),
        found: "binary data".into(),
    })?;
    let out = blocks::without(text, old).into_bytes();
    let want: Vec<&[u8]> = before
        .iter()
        .filter(|c| c.der != old.der)
        .map(|c| c.der.as_slice())
        .collect();
    let after = certs_in(&out);
    let got: Vec<&[u8]> = after.iter().map(|c| c.der.as_slice()).collect();
    if got != want {
        return Err(Error::ReadBack {
            path: path.to_path_buf(),
            why: format!("{what} would not read back as what it held less the old CA"),
        });
    }
    Ok(Some(out))
}

/// A trust file without the old CA; `None` when it does not hold it.
pub fn trust_file(
    path: &Path,
    bytes: &[u8],
    old: &CertInfo,
    new: &CertInfo,
) -> Result<Option<Vec<u8>>, Error> {
    drop_old(path, "a CA file", bytes, old, new)
}

/// A kubeconfig with the old CA taken out of every cluster's `certificate-authority-data`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeconfigVerdict {
    pub text: Option<String>,
    pub changes: Vec<Change>,
    /// Clusters that name their CA by file (that file is an anchor of its own).
    pub references: Vec<CaReference>,
}

pub fn kubeconfig(
    path: &Path,
    text: &str,
    old: &CertInfo,
    new: &CertInfo,
) -> Result<KubeconfigVerdict, Error> {
    use base64::Engine;
    let bad = |found: String| Error::Anchor {
        path: path.to_path_buf(),
        expected: "a kubeconfig whose cluster CAs can be edited".into(),
        found,
    };
    let mut out = KubeconfigVerdict::default();
    let mut current = text.to_string();
    for c in crate::edit::kubeconfig::clusters(text).map_err(|e| bad(e.to_string()))? {
        match (&c.ca_data, &c.ca_file) {
            (Some(data), _) => {
                let compact: String = data.chars().filter(|ch| !ch.is_whitespace()).collect();
                let pem = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| {
                        bad(format!(
                            "cluster `{}`: base64 that does not decode ({e})",
                            c.name
                        ))
                    })?;
                let what = format!("cluster `{}`'s certificate-authority-data", c.name);
                let Some(kept) = drop_old(path, &what, &pem, old, new)? else {
                    continue;
                };
                current = crate::edit::kubeconfig::set_ca_data(&current, &kept, Some(&c.name))
                    .map_err(|e| bad(format!("cluster `{}`: {e}", c.name)))?;
                out.changes.push(Change {
                    at: format!("clusters[{}].certificate-authority-data", c.name),
                    before: subjects(&certs_in(&pem)),
                    after: subjects(&certs_in(&kept)),
                });
            }
            (None, Some(file)) => out.references.push(CaReference {
                cluster: c.name.clone(),
                path: file.clone(),
            }),
            (None, None) => {}
        }
    }
    if !out.changes.is_empty() {
        // Read back: no cluster trusts the old CA, every cluster changed trusts the new.
        for c in crate::edit::kubeconfig::clusters(&current).map_err(|e| bad(e.to_string()))? {
            let held = c
                .ca_data
                .as_deref()
                .and_then(|d| {
                    let compact: String = d.chars().filter(|ch| !ch.is_whitespace()).collect();
                    base64::engine::general_purpose::STANDARD
                        .decode(compact)
                        .ok()
                })
                .map(|p| certs_in(&p))
                .unwrap_or_default();
            let edited = out
                .changes
                .iter()
                .any(|ch| ch.at == format!("clusters[{}].certificate-authority-data", c.name));
            if holds(&held, old) || (edited && !holds(&held, new)) {
                return Err(Error::ReadBack {
                    path: path.to_path_buf(),
                    why: format!(
                        "the edited kubeconfig does not read back as cluster `{}` trusting the new CA only",
                        c.name
                    ),
                });
            }
        }
        out.text = Some(current);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::testkit::{pair, read};
    use crate::rotate::trust::{self, FileVerdict};

    #[test]
    fn finish_takes_the_old_ca_out_and_refuses_an_anchor_without_the_new() {
        let (old, new, _) = pair();
        let p = Path::new("ca.crt");
        let bytes = read("etc/kubernetes/pki/ca.crt");
        let FileVerdict::Add(both) = trust::trust_file(&bytes, &old, &new).unwrap() else {
            panic!("expected an edit")
        };
        let out = trust_file(p, &both, &old, &new).unwrap().unwrap();
        let held = certs_in(&out);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].der, new.der);
        assert!(trust_file(p, &out, &old, &new).unwrap().is_none());
        // Only the old CA: finishing would leave it trusting nothing new.
        assert!(trust_file(p, &bytes, &old, &new).is_err());

        let text = String::from_utf8(read("etc/kubernetes/admin.conf")).unwrap();
        let both = trust::kubeconfig(&text, &old, &new).unwrap().text.unwrap();
        let v = kubeconfig(Path::new("admin.conf"), &both, &old, &new).unwrap();
        let edited = v.text.unwrap();
        assert_eq!(v.changes.len(), 1);
        assert_eq!(both.lines().count(), edited.lines().count());
        let diff = both
            .lines()
            .zip(edited.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(diff, 1, "one line changes");
        let again = kubeconfig(Path::new("admin.conf"), &edited, &old, &new).unwrap();
        assert!(again.text.is_none());
    }
}
