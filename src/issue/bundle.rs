//! A reissue bundle: the new files under the originals' names and relative paths, and
//! `bundle.json`, the manifest the rollout reads (targets, hashes, serials, SAN diffs, which
//! components use each file). Building it is pure; writing it is [`crate::sys::fs::write_bundle`].

use super::error::Error;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::target::Reissuable;
use super::Issued;
use crate::pki::cert::sha256_hex;
use crate::pki::key::KeyFormat;
use crate::pki::Role;
use crate::spec::san::EditOutcome;

#[derive(Debug, Clone, Serialize)]
pub struct SanDiff {
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl SanDiff {
    pub fn new(before: &[crate::spec::San], outcome: &EditOutcome) -> SanDiff {
        let s = |v: &[crate::spec::San]| v.iter().map(|x| x.to_string()).collect();
        SanDiff {
            before: s(before),
            after: s(&outcome.sans),
            added: s(&outcome.added),
            removed: s(&outcome.removed),
        }
    }

    /// The SANs of a certificate left as it is.
    pub fn unchanged(sans: &[crate::spec::San]) -> SanDiff {
        let all: Vec<String> = sans.iter().map(|x| x.to_string()).collect();
        SanDiff {
            before: all.clone(),
            after: all,
            added: Vec::new(),
            removed: Vec::new(),
        }
    }
}

/// One file of the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct BundleFile {
    /// Relative to the bundle directory.
    pub bundle_path: PathBuf,
    /// The file it replaces, absolute.
    pub target: PathBuf,
    /// `certificate`, `private-key` or `kubeconfig`.
    pub kind: &'static str,
    pub role: Role,
    pub components: Vec<&'static str>,
    /// The CA that signed it (health gates verify the served chain against it).
    pub ca: String,
    /// Octal, the mode the file is installed with.
    pub mode: String,
    pub old_sha256: String,
    pub new_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sans: Option<SanDiff>,
    /// For a certificate: `kept` or `new`; for a key: the certificate it pairs with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `certs issue --like`: the file this new one was made like (the template certificate,
    /// or its key). Such a file is new: `old_sha256` is empty and nothing is at `target` yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub like: Option<PathBuf>,
    #[serde(skip)]
    pub contents: Vec<u8>,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub schema: &'static str,
    pub created: String,
    pub ca: CaRef,
    pub files: Vec<BundleFile>,
}

#[derive(Debug, Serialize)]
pub struct CaRef {
    pub certificate: String,
    pub subject: String,
}

/// Which components read a certificate of this role, and so must restart to serve it.
pub fn components(role: Role) -> Vec<&'static str> {
    match role {
        Role::Apiserver
        | Role::ApiserverKubeletClient
        | Role::ApiserverEtcdClient
        | Role::FrontProxyClient => {
            vec!["kube-apiserver"]
        }
        Role::EtcdServer | Role::EtcdPeer => vec!["etcd"],
        Role::EtcdClient => vec!["etcd-clients"],
        Role::ControllerManager => vec!["kube-controller-manager"],
        Role::Scheduler => vec!["kube-scheduler"],
        Role::Kubelet => vec!["kubelet"],
        Role::KubeProxy => vec!["kube-proxy"],
        Role::Admin => vec!["kubectl"],
        Role::Ca | Role::EtcdCa | Role::FrontProxyCa | Role::Unknown => vec![],
    }
}

/// A reissued target, ready to become bundle files.
pub struct Reissued<'a> {
    pub target: &'a Reissuable,
    pub ca: String,
    pub issued: &'a Issued,
    pub diff: SanDiff,
    /// Where the target's private key lives and in which format, when a new key is made.
    pub key_file: Option<(PathBuf, KeyFormat, Vec<u8>)>,
}

/// The bundle's files for each reissued target, with paths relative to the targets' common
/// directory (so `pki/apiserver.crt` and `pki/etcd/server.crt` keep their layout).
pub fn files(items: &[Reissued]) -> Result<Vec<BundleFile>, Error> {
    let absolute = |p: &Path| {
        std::path::absolute(p).map_err(|e| Error::Bundle(format!("`{}`: {e}", p.display())))
    };
    let mut dirs = Vec::new();
    for r in items {
        dirs.push(absolute(r.target.path.parent().unwrap_or(Path::new(".")))?);
        if let Some((p, _, _)) = &r.key_file {
            dirs.push(absolute(p.parent().unwrap_or(Path::new(".")))?);
        }
    }
    let base = common_ancestor(&dirs);
    let mut out: Vec<BundleFile> = Vec::new();
    for r in items {
        let target = absolute(&r.target.path)?;
        let new_pem = pem::encode(&pem::Pem::new("CERTIFICATE", r.issued.der.clone()));
        // A new key keeps the format of the key it replaces (a file's, or a kubeconfig's embedded one).
        let key_format = r
            .key_file
            .as_ref()
            .map(|(_, f, _)| *f)
            .or(r.target.key_format);
        let key_pem = match &r.issued.new_key {
            Some(k) => Some(k.to_pem(key_format.unwrap_or(KeyFormat::Pkcs8))?),
            None => None,
        };
        // A kubeconfig carries both; several users of one kubeconfig rewrite the same file.
        let previous = out.iter().position(|f| f.target == target);
        let current: &[u8] = match previous {
            Some(i) => &out[i].contents,
            None => &r.target.bytes,
        };
        let (kind, contents) = match &r.target.user {
            Some(user) => (
                "kubeconfig",
                rewrite_kubeconfig(current, user, &new_pem, key_pem.as_deref())?,
            ),
            None => (
                "certificate",
                replace_first_cert(current, &r.issued.der, &new_pem),
            ),
        };
        let file = BundleFile {
            bundle_path: target.strip_prefix(&base).unwrap_or(&target).to_path_buf(),
            kind,
            role: r.target.role,
            components: components(r.target.role),
            ca: r.ca.clone(),
            // Same mode as the file it replaces; a kubeconfig holds a key, so never looser than 0600.
            mode: format!(
                "{:04o}",
                match (kind, r.target.mode) {
                    ("kubeconfig", m) => m.unwrap_or(0o600) & 0o600,
                    (_, m) => m.unwrap_or(0o644),
                }
            ),
            old_sha256: sha256_hex(&r.target.bytes),
            new_sha256: sha256_hex(&contents),
            old_serial: Some(r.target.info.serial.clone()),
            new_serial: Some(r.issued.info.serial.clone()),
            sans: Some(r.diff.clone()),
            key: Some(if r.issued.new_key.is_some() {
                "new".into()
            } else {
                "kept".into()
            }),
            like: None,
            target: target.clone(),
            contents,
        };
        match previous {
            Some(i) => out[i] = file,
            None => out.push(file),
        }
        if let (Some(key_pem), Some((key_path, _, old)), None) =
            (key_pem, &r.key_file, &r.target.user)
        {
            let key_target = absolute(key_path)?;
            out.push(BundleFile {
                bundle_path: key_target
                    .strip_prefix(&base)
                    .unwrap_or(&key_target)
                    .to_path_buf(),
                kind: "private-key",
                role: r.target.role,
                components: components(r.target.role),
                ca: r.ca.clone(),
                mode: "0600".into(),
                old_sha256: sha256_hex(old),
                new_sha256: sha256_hex(key_pem.as_bytes()),
                old_serial: None,
                new_serial: None,
                sans: None,
                key: Some(target.display().to_string()),
                like: None,
                target: key_target,
                contents: key_pem.into_bytes(),
            });
        }
    }
    verify_kubeconfigs(&out, items)?;
    Ok(out)
}

/// The file with its first certificate replaced; a chain after it is kept. DER stays DER.
fn replace_first_cert(bytes: &[u8], new_der: &[u8], new_pem: &str) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return new_der.to_vec();
    };
    let (Some(start), Some(end)) = (
        text.find("-----BEGIN CERTIFICATE-----"),
        text.find("-----END CERTIFICATE-----"),
    ) else {
        return new_der.to_vec();
    };
    let mut end = end + "-----END CERTIFICATE-----".len();
    if text[end..].starts_with("\r\n") {
        end += 2;
    } else if text[end..].starts_with('\n') {
        end += 1;
    }
    format!(
        "{}{}{}",
        &text[..start],
        new_pem.replace("\r\n", "\n"),
        &text[end..]
    )
    .into_bytes()
}

/// The kubeconfig with `user`'s client-certificate-data (and client-key-data) replaced where the
/// parsed document has them; every other byte as it was.
fn rewrite_kubeconfig(
    bytes: &[u8],
    user: &str,
    cert_pem: &str,
    key_pem: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Error::Bundle("kubeconfig is not UTF-8".into()))?;
    crate::edit::kubeconfig::set_user_credentials(text, user, cert_pem, key_pem)
        .map(String::into_bytes)
        .map_err(Error::from)
}

/// Every edited kubeconfig read again as a client would: each reissued user must carry the new
/// certificate (and the new key when one was made), every other user what it had.
fn verify_kubeconfigs(out: &[BundleFile], items: &[Reissued]) -> Result<(), Error> {
    use crate::pki::kubeconfig::Source;
    for f in out.iter().filter(|f| f.kind == "kubeconfig") {
        let text = std::str::from_utf8(&f.contents)
            .map_err(|_| Error::Bundle("kubeconfig is not UTF-8".into()))?;
        let kc = crate::pki::kubeconfig::parse(&f.target, text).map_err(|e| {
            Error::Bundle(format!(
                "refusing to write: the edited `{}` does not read back ({e})",
                f.target.display()
            ))
        })?;
        let fail = |user: &str, what: &str| {
            Err(Error::Bundle(format!(
                "refusing to write: in the edited `{}`, user `{user}` {what}",
                f.target.display()
            )))
        };
        for u in &kc.users {
            let reissued = items.iter().find(|r| {
                r.target.user.as_deref() == Some(u.name.as_str())
                    && std::path::absolute(&r.target.path).is_ok_and(|p| p == f.target)
            });
            let cert = match &u.client_cert {
                Some(Source::Embedded(c)) => Some(&c.der),
                _ => None,
            };
            match reissued {
                Some(r) => {
                    if cert != Some(&r.issued.der) {
                        return fail(&u.name, "does not carry the new certificate");
                    }
                    if r.issued.new_key.is_some() {
                        let key = match &u.client_key {
                            Some(Source::Embedded(k)) => k.public_key.as_ref(),
                            _ => None,
                        };
                        if key != Some(&r.issued.info.public_key) {
                            return fail(&u.name, "does not carry the new key");
                        }
                    }
                }
                None => {
                    let before = items
                        .iter()
                        .find(|r| std::path::absolute(&r.target.path).is_ok_and(|p| p == f.target))
                        .map(|r| &r.target.bytes);
                    let old = before
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .and_then(|t| crate::pki::kubeconfig::parse(&f.target, t).ok());
                    let old_cert = old
                        .as_ref()
                        .and_then(|k| k.users.iter().find(|o| o.name == u.name))
                        .and_then(|o| match &o.client_cert {
                            Some(Source::Embedded(c)) => Some(&c.der),
                            _ => None,
                        });
                    if cert != old_cert {
                        return fail(&u.name, "would change, though it was not reissued");
                    }
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn common_ancestor(dirs: &[PathBuf]) -> PathBuf {
    let mut base = dirs.first().cloned().unwrap_or_default();
    for d in dirs.iter().skip(1) {
        while !d.starts_with(&base) {
            if !base.pop() {
                break;
            }
        }
    }
    base
}
