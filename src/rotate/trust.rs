//! The `trust` stage as edits: the new CA appended to every trust anchor that holds the old one,
//! the old CA kept first (a file also used as the signing CA, kubeadm's `ca.crt` beside
//! `ca.key`, still pairs with its key: Go's `tls.X509KeyPair` and kubeadm take the first
//! certificate), every other byte kept. An anchor that already holds both is left as it is.

use crate::edit::bundle::Change;
use crate::pki::cert::CertInfo;

use super::{certs_in, holds, pem_of, Error};

/// What the trust stage does to one CA file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileVerdict {
    /// It does not hold the old CA: no anchor of it.
    NotAnchor,
    /// It holds the old and the new CA already.
    Already,
    /// It holds the old CA; these are its new bytes (old, then new).
    Add(Vec<u8>),
}

fn subjects(list: &[CertInfo]) -> String {
    list.iter()
        .map(|c| format!("{} ({})", c.subject, c.serial))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The new CA's PEM appended to `text` in its own line ending.
fn appended(text: &str, new: &CertInfo) -> String {
    let crlf = text.contains("\r\n");
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push_str(nl);
    }
    let pem = pem_of(new);
    out.push_str(&if crlf { pem.replace('\n', "\r\n") } else { pem });
    out
}

/// The trust stage for a CA file (`--client-ca-file`, `--trusted-ca-file`, …).
pub fn trust_file(bytes: &[u8], old: &CertInfo, new: &CertInfo) -> Result<FileVerdict, Error> {
    let before = certs_in(bytes);
    if !holds(&before, old) {
        return Ok(FileVerdict::NotAnchor);
    }
    if holds(&before, new) {
        return Ok(FileVerdict::Already);
    }
    let text = std::str::from_utf8(bytes)
        .ok()
        .filter(|t| t.contains("-----BEGIN CERTIFICATE-----"))
        .ok_or_else(|| Error::Edit("expected a PEM CA file the new CA can be appended to, found a DER certificate (convert it to PEM first: openssl x509 -inform der)".into()))?;
    let out = appended(text, new).into_bytes();
    let after = certs_in(&out);
    let want: Vec<&[u8]> = before
        .iter()
        .map(|c| c.der.as_slice())
        .chain([new.der.as_slice()])
        .collect();
    let got: Vec<&[u8]> = after.iter().map(|c| c.der.as_slice()).collect();
    if got != want || !out.starts_with(bytes) {
        return Err(Error::Edit(format!(
            "refusing to write: the edited file would not read back as {} + the new CA",
            subjects(&before)
        )));
    }
    Ok(FileVerdict::Add(out))
}

/// A file a kubeconfig cluster names as its CA (`certificate-authority:`), as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaReference {
    pub cluster: String,
    pub path: String,
}

/// The trust stage for a kubeconfig.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeconfigVerdict {
    /// The edited text, when a cluster changes.
    pub text: Option<String>,
    pub changes: Vec<Change>,
    /// Clusters whose embedded CA holds both already.
    pub already: Vec<String>,
    /// Clusters that name their CA by file: that file is the anchor to edit.
    pub references: Vec<CaReference>,
}

fn decode_data(data: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| {
            Error::Edit(format!(
                "expected base64 in certificate-authority-data, found {e}"
            ))
        })
}

/// Every cluster whose `certificate-authority-data` holds the old CA gets old + new, only that
/// line changing ([`crate::edit::kubeconfig::set_ca_data`]).
pub fn kubeconfig(text: &str, old: &CertInfo, new: &CertInfo) -> Result<KubeconfigVerdict, Error> {
    let mut out = KubeconfigVerdict::default();
    let mut current = text.to_string();
    for c in crate::edit::kubeconfig::clusters(text).map_err(|e| Error::Edit(e.to_string()))? {
        match (&c.ca_data, &c.ca_file) {
            (Some(data), _) => {
                let pem = decode_data(data)
                    .map_err(|e| Error::Edit(format!("cluster `{}`: {e}", c.name)))?;
                let before = certs_in(&pem);
                if !holds(&before, old) {
                    continue;
                }
                if holds(&before, new) {
                    out.already.push(c.name.clone());
                    continue;
                }
                let body = std::str::from_utf8(&pem).map_err(|_| {
                    Error::Edit(format!(
                        "cluster `{}`: expected PEM in certificate-authority-data, found binary data",
                        c.name
                    ))
                })?;
                let both = appended(body, new);
                current =
                    crate::edit::kubeconfig::set_ca_data(&current, both.as_bytes(), Some(&c.name))
                        .map_err(|e| Error::Edit(format!("cluster `{}`: {e}", c.name)))?;
                let mut after = before.clone();
                after.push(new.clone());
                out.changes.push(Change {
                    at: format!("clusters[{}].certificate-authority-data", c.name),
                    before: subjects(&before),
                    after: subjects(&after),
                });
            }
            (None, Some(path)) => out.references.push(CaReference {
                cluster: c.name.clone(),
                path: path.clone(),
            }),
            (None, None) => {}
        }
    }
    if !out.changes.is_empty() {
        // Read back: every cluster changed holds old + new, and only those changed.
        let was =
            crate::edit::kubeconfig::clusters(text).map_err(|e| Error::Edit(e.to_string()))?;
        let now =
            crate::edit::kubeconfig::clusters(&current).map_err(|e| Error::Edit(e.to_string()))?;
        for (a, b) in was.iter().zip(&now) {
            let edited = out
                .changes
                .iter()
                .any(|ch| ch.at == format!("clusters[{}].certificate-authority-data", a.name));
            let ok = if edited {
                let held = b
                    .ca_data
                    .as_deref()
                    .map(|d| decode_data(d).map(|p| certs_in(&p)).unwrap_or_default())
                    .unwrap_or_default();
                holds(&held, old) && holds(&held, new)
            } else {
                a == b
            };
            if !ok || was.len() != now.len() {
                return Err(Error::Edit(format!(
                    "refusing to write: the edited kubeconfig does not read back as cluster `{}` trusting both CAs",
                    a.name
                )));
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

    #[test]
    fn a_trust_file_gets_the_new_ca_after_the_old_once() {
        let (old, new, _) = pair();
        let bytes = read("etc/kubernetes/pki/ca.crt");
        let FileVerdict::Add(out) = trust_file(&bytes, &old, &new).unwrap() else {
            panic!("expected an edit")
        };
        assert!(out.starts_with(&bytes));
        let held = certs_in(&out);
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].der, old.der, "the old CA stays first");
        assert_eq!(held[1].der, new.der);
        assert_eq!(trust_file(&out, &old, &new).unwrap(), FileVerdict::Already);
        // Another CA's file is no anchor of this one.
        assert_eq!(
            trust_file(&read("etc/kubernetes/pki/etcd/ca.crt"), &old, &new).unwrap(),
            FileVerdict::NotAnchor
        );
        // CRLF and a missing final newline are kept as they are.
        let crlf = String::from_utf8(bytes.clone())
            .unwrap()
            .trim_end()
            .replace('\n', "\r\n");
        let FileVerdict::Add(out) = trust_file(crlf.as_bytes(), &old, &new).unwrap() else {
            panic!("expected an edit")
        };
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&crlf));
        assert!(!text.replace("\r\n", "").contains('\n'), "CRLF throughout");
    }

    #[test]
    fn a_kubeconfig_gets_both_cas_in_its_one_data_line() {
        let (old, new, _) = pair();
        let text = String::from_utf8(read("etc/kubernetes/admin.conf")).unwrap();
        let v = kubeconfig(&text, &old, &new).unwrap();
        let edited = v.text.clone().unwrap();
        assert_eq!(v.changes.len(), 1);
        let diff: Vec<(&str, &str)> = text
            .lines()
            .zip(edited.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(diff.len(), 1, "one line changes");
        assert!(diff[0]
            .1
            .trim_start()
            .starts_with("certificate-authority-data: "));
        assert_eq!(text.lines().count(), edited.lines().count());
        let again = kubeconfig(&edited, &old, &new).unwrap();
        assert!(again.text.is_none() && again.already == ["kubernetes"]);
    }
}
