//! Kubeconfig files: which server each points at, and the client certificate, key and CA each
//! carries, embedded (`*-data`, base64 of PEM) or by file reference.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::cert::CertInfo;
use super::key::KeyInfo;

/// A credential or CA, embedded or referenced.
#[derive(Debug, Clone)]
pub enum Source<T> {
    Embedded(T),
    /// A file reference, resolved against the kubeconfig's directory when relative.
    File(PathBuf),
    /// Present but unreadable; the string says why.
    Broken(String),
}

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub server: String,
    pub ca: Option<Source<Box<CertInfo>>>,
}

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub client_cert: Option<Source<Box<CertInfo>>>,
    pub client_key: Option<Source<KeyInfo>>,
}

#[derive(Debug, Clone)]
pub struct Kubeconfig {
    pub clusters: Vec<Cluster>,
    pub users: Vec<User>,
    pub current_context: Option<String>,
    /// The server of the current context's cluster (or of the only cluster).
    pub server: Option<String>,
    /// The user of the current context (or the only user).
    pub current_user: Option<String>,
}

/// Cheap test before a YAML parse: kubeconfigs say `kind: Config` or carry clusters and users.
pub fn looks_like(text: &str) -> bool {
    text.contains("kind: Config") || (text.contains("clusters:") && text.contains("users:"))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct Raw {
    clusters: Vec<Named<RawCluster>>,
    users: Vec<NamedUser>,
    contexts: Vec<NamedContext>,
    current_context: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Named<T: Default> {
    name: String,
    cluster: T,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NamedContext {
    name: String,
    context: RawContext,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NamedUser {
    name: String,
    user: RawUser,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct RawCluster {
    server: String,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "kebab-case")]
struct RawUser {
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawContext {
    cluster: String,
    user: String,
}

pub fn parse(path: &Path, text: &str) -> Result<Kubeconfig, String> {
    let raw: Raw = super::yaml::from_str(text).map_err(|e| {
        format!(
            "expected a kubeconfig (YAML), found a parse error: {}",
            super::decode::withhold_encoded(&e.to_string())
        )
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let clusters: Vec<Cluster> = raw
        .clusters
        .into_iter()
        .map(|c| Cluster {
            ca: source(
                dir,
                c.cluster.certificate_authority_data,
                c.cluster.certificate_authority,
                first_cert,
            ),
            server: c.cluster.server,
            name: c.name,
        })
        .collect();
    let users: Vec<User> = raw
        .users
        .into_iter()
        .map(|u| User {
            client_cert: source(
                dir,
                u.user.client_certificate_data,
                u.user.client_certificate,
                first_cert,
            ),
            client_key: source(dir, u.user.client_key_data, u.user.client_key, first_key),
            name: u.name,
        })
        .collect();
    let context = raw
        .current_context
        .as_ref()
        .and_then(|cur| raw.contexts.iter().find(|c| &c.name == cur))
        .or(if raw.contexts.len() == 1 {
            raw.contexts.first()
        } else {
            None
        });
    let cluster_name = context.map(|c| c.context.cluster.clone());
    let server = match &cluster_name {
        Some(name) => clusters.iter().find(|c| &c.name == name),
        None if clusters.len() == 1 => clusters.first(),
        None => None,
    }
    .map(|c| c.server.clone());
    let current_user = context
        .map(|c| c.context.user.clone())
        .or_else(|| (users.len() == 1).then(|| users[0].name.clone()));
    Ok(Kubeconfig {
        clusters,
        users,
        current_context: raw.current_context,
        server,
        current_user,
    })
}

fn source<T>(
    dir: &Path,
    data: Option<String>,
    file: Option<String>,
    read: fn(&[u8]) -> Result<T, String>,
) -> Option<Source<T>> {
    if let Some(data) = data.filter(|d| !d.trim().is_empty()) {
        return Some(match base64_decode(&data).and_then(|pem| read(&pem)) {
            Ok(v) => Source::Embedded(v),
            Err(e) => Source::Broken(super::decode::withhold_encoded(&e)),
        });
    }
    file.filter(|f| !f.is_empty())
        .map(|f| Source::File(dir.join(f)))
}

fn first_cert(pem_bytes: &[u8]) -> Result<Box<CertInfo>, String> {
    let text = std::str::from_utf8(pem_bytes).map_err(|_| "embedded data is not PEM text")?;
    let block = pem::parse(text).map_err(|e| format!("embedded data is not PEM ({e})"))?;
    CertInfo::from_der(block.contents())
        .map(Box::new)
        .map_err(|e| format!("embedded certificate unreadable ({e})"))
}

fn first_key(pem_bytes: &[u8]) -> Result<KeyInfo, String> {
    let text = std::str::from_utf8(pem_bytes).map_err(|_| "embedded key is not PEM text")?;
    let block = pem::parse(text).map_err(|e| format!("embedded key is not PEM ({e})"))?;
    let encrypted = block
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.contains("ENCRYPTED"));
    super::key::read_key_block(block.tag(), block.contents(), encrypted)
}

/// Standard base64 as kubeconfigs carry it (whitespace tolerated).
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("embedded data is not base64 ({e})"))
}
