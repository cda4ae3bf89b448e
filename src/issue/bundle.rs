//! A reissue bundle: the new files under the originals' names and relative paths, and
//! `bundle.json`, the manifest the rollout reads (targets, hashes, serials, SAN diffs, which
//! components use each file). Building it is pure; writing it is [`crate::sys::fs::write_bundle`].

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::target::Target;
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
    pub target: &'a Target,
    pub ca: String,
    pub issued: &'a Issued,
    pub diff: SanDiff,
    /// Where the target's private key lives and in which format, when a new key is made.
    pub key_file: Option<(PathBuf, KeyFormat, Vec<u8>)>,
}

/// The bundle's files for each reissued target, with paths relative to the targets' common
/// directory (so `pki/apiserver.crt` and `pki/etcd/server.crt` keep their layout).
pub fn files(items: &[Reissued]) -> Result<Vec<BundleFile>, String> {
    let absolute = |p: &Path| std::path::absolute(p).map_err(|e| format!("`{}`: {e}", p.display()));
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

/// The kubeconfig with `user`'s client-certificate-data (and client-key-data) replaced; every
/// other byte as it was.
fn rewrite_kubeconfig(
    bytes: &[u8],
    user: &str,
    cert_pem: &str,
    key_pem: Option<&str>,
) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.replace("\r\n", "\n"));
    let text = std::str::from_utf8(bytes).map_err(|_| "kubeconfig is not UTF-8")?;
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let start = lines
        .iter()
        .position(|l| {
            let t = l.trim().trim_start_matches("- ");
            t == format!("name: {user}") || t == format!("name: \"{user}\"")
        })
        .ok_or_else(|| format!("user `{user}` not found in the kubeconfig"))?;
    let mut replaced_cert = false;
    for line in lines.iter_mut().skip(start) {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let newline = if line.ends_with('\n') { "\n" } else { "" };
        if trimmed.starts_with("client-certificate-data:") && !replaced_cert {
            *line = format!(
                "{indent}client-certificate-data: {}{newline}",
                b64(cert_pem)
            );
            replaced_cert = true;
        } else if let (Some(key), true) = (key_pem, trimmed.starts_with("client-key-data:")) {
            *line = format!("{indent}client-key-data: {}{newline}", b64(key));
            break;
        }
        if replaced_cert && key_pem.is_none() {
            break;
        }
    }
    if !replaced_cert {
        return Err(format!(
            "user `{user}` has no client-certificate-data line to replace"
        ));
    }
    Ok(lines.concat().into_bytes())
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
