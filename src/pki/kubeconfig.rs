//! Kubeconfig files: which server each points at, and the client certificate, key and CA each
//! carries, embedded (`*-data`, base64 of PEM) or by file reference.

use super::error::Error;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::block_yaml::{self, Node};
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
    /// Embedded, and moved into an [`crate::pki::Inventory`], whose entry for the kubeconfig
    /// says where (so that a fleet's embedded credentials are held once, not twice).
    Inventoried,
}

impl<T> Source<T> {
    /// Whether the value is (or was) embedded in the kubeconfig.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Source::Embedded(_) | Source::Inventoried)
    }
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

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "kebab-case")]
struct Raw {
    clusters: Vec<Named<RawCluster>>,
    users: Vec<NamedUser>,
    contexts: Vec<NamedContext>,
    current_context: Option<String>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
struct Named<T: Default> {
    name: String,
    cluster: T,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
struct NamedContext {
    name: String,
    context: RawContext,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
struct NamedUser {
    name: String,
    user: RawUser,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "kebab-case")]
struct RawCluster {
    server: String,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default, rename_all = "kebab-case")]
struct RawUser {
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
}

#[derive(Deserialize, Default, Debug, PartialEq)]
#[serde(default)]
struct RawContext {
    cluster: String,
    user: String,
}

pub fn parse(path: &Path, text: &str) -> Result<Kubeconfig, Error> {
    // The layout kubectl and kubeadm write is read by slicing lines; anything else (or anything
    // the subset reader is unsure of) goes through the bounded full YAML parser, with the same
    // result.
    let raw = match block_yaml::parse(text).as_ref().and_then(raw_from_subset) {
        Some(raw) => raw,
        None => super::yaml::from_str(text)
            .map_err(|e| Error::Kubeconfig(super::decode::withhold_encoded(&e.to_string())))?,
    };
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

/// The kubeconfig fields from a document of the block subset; `None` when a field the
/// kubeconfig schema types has another shape (the full parser then decides, as before).
fn raw_from_subset(doc: &Node) -> Option<Raw> {
    fn text(node: Option<&Node>) -> Option<Option<String>> {
        match node {
            None => Some(None),
            Some(Node::Scalar(s)) => Some(Some((*s).to_string())),
            Some(_) => None,
        }
    }
    fn items<'n, 'a>(node: Option<&'n Node<'a>>) -> Option<&'n [Node<'a>]> {
        match node {
            None => Some(&[]),
            Some(Node::Seq(items)) => Some(items),
            Some(_) => None,
        }
    }
    fn map<'n, 'a>(node: Option<&'n Node<'a>>) -> Option<Option<&'n Node<'a>>> {
        match node {
            None => Some(None),
            Some(m @ Node::Map(_)) => Some(Some(m)),
            Some(_) => None,
        }
    }
    fn named<'n, 'a>(item: &'n Node<'a>, inner: &str) -> Option<(String, Option<&'n Node<'a>>)> {
        if !matches!(item, Node::Map(_)) {
            return None;
        }
        Some((
            text(item.get("name"))?.unwrap_or_default(),
            map(item.get(inner))?,
        ))
    }
    let field = |m: Option<&Node>, key: &str| text(m.and_then(|m| m.get(key)));
    let mut raw = Raw::default();
    for item in items(doc.get("clusters"))? {
        let (name, c) = named(item, "cluster")?;
        raw.clusters.push(Named {
            name,
            cluster: RawCluster {
                server: field(c, "server")?.unwrap_or_default(),
                certificate_authority: field(c, "certificate-authority")?,
                certificate_authority_data: field(c, "certificate-authority-data")?,
            },
        });
    }
    for item in items(doc.get("users"))? {
        let (name, u) = named(item, "user")?;
        raw.users.push(NamedUser {
            name,
            user: RawUser {
                client_certificate: field(u, "client-certificate")?,
                client_certificate_data: field(u, "client-certificate-data")?,
                client_key: field(u, "client-key")?,
                client_key_data: field(u, "client-key-data")?,
            },
        });
    }
    for item in items(doc.get("contexts"))? {
        let (name, c) = named(item, "context")?;
        raw.contexts.push(NamedContext {
            name,
            context: RawContext {
                cluster: field(c, "cluster")?.unwrap_or_default(),
                user: field(c, "user")?.unwrap_or_default(),
            },
        });
    }
    raw.current_context = text(doc.get("current-context"))?;
    Some(raw)
}

fn source<T>(
    dir: &Path,
    data: Option<String>,
    file: Option<String>,
    read: fn(&[u8]) -> Result<T, Error>,
) -> Option<Source<T>> {
    if let Some(data) = data.filter(|d| !d.trim().is_empty()) {
        return Some(match base64_decode(&data).and_then(|pem| read(&pem)) {
            Ok(v) => Source::Embedded(v),
            Err(e) => Source::Broken(super::decode::withhold_encoded(&e.to_string())),
        });
    }
    file.filter(|f| !f.is_empty())
        .map(|f| Source::File(dir.join(f)))
}

fn first_cert(pem_bytes: &[u8]) -> Result<Box<CertInfo>, Error> {
    let text = std::str::from_utf8(pem_bytes)
        .map_err(|_| Error::Embedded("embedded data is not PEM text".into()))?;
    let block = super::armor::parse(text)
        .map_err(|e| Error::Embedded(format!("embedded data is not PEM ({e})")))?;
    CertInfo::from_der(&block.contents)
        .map(Box::new)
        .map_err(|e| Error::Embedded(format!("embedded certificate unreadable ({e})")))
}

fn first_key(pem_bytes: &[u8]) -> Result<KeyInfo, Error> {
    let text = std::str::from_utf8(pem_bytes)
        .map_err(|_| Error::Embedded("embedded key is not PEM text".into()))?;
    let block = super::armor::parse(text)
        .map_err(|e| Error::Embedded(format!("embedded key is not PEM ({e})")))?;
    super::key::read_key_block(&block.label, &block.contents, block.encrypted)
}

/// Standard base64 as kubeconfigs carry it (whitespace tolerated).
fn base64_decode(text: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let decoded = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        engine.decode(compact)
    } else {
        engine.decode(text)
    };
    decoded.map_err(|e| Error::Embedded(format!("embedded data is not base64 ({e})")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // reads the committed fixtures
    use super::*;

    /// The subset reader's fields, or `None` when it leaves the file to the full parser.
    fn fast(text: &str) -> Option<Raw> {
        block_yaml::parse(text).as_ref().and_then(raw_from_subset)
    }

    fn full(text: &str) -> Option<Raw> {
        serde_yaml_ng::from_str(text).ok()
    }

    fn fixture_kubeconfigs() -> Vec<(PathBuf, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        walkdir::WalkDir::new(dir)
            .sort_by_file_name()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                let text = std::fs::read_to_string(e.path()).ok()?;
                (looks_like(&text) && full(&text).is_some()).then(|| (e.into_path(), text))
            })
            .collect()
    }

    #[test]
    fn every_fixture_kubeconfig_takes_the_fast_path_with_the_full_parsers_result() {
        let all = fixture_kubeconfigs();
        assert!(all.len() >= 10, "found {} fixture kubeconfigs", all.len());
        for (path, text) in &all {
            assert_eq!(fast(text), full(text), "{}", path.display());
            assert!(
                fast(text).is_some(),
                "{} left the fast path",
                path.display()
            );
        }
    }

    /// Rewrites of real kubeconfigs, in and out of the subset: whenever the subset reader
    /// answers, its answer is the full parser's.
    #[test]
    fn the_fast_path_never_disagrees_with_the_full_parser() {
        let rewrites: &[fn(&str) -> String] = &[
            |t| t.replace("\n- ", "\n  - ").replace("\n  ", "\n    "),
            |t| {
                t.replace("\n  name: ", "\n  name: \"")
                    .replace("\nusers", "\"\nusers")
            },
            |t| format!("# written by hand\n{t}\n\n# end\n"),
            |t| {
                t.replace(
                    "kind: Config",
                    "kind: Config\nextensions:\n- name: x\n  extension:\n    a: b\n    c: []",
                )
            },
            |t| {
                t.replace("current-context: ", "current-context: 'x-")
                    .replace("\nkind", "'\nkind")
            },
            |t| t.replace("  name: ", "  name: yes-"),
            |t| t.replace("  name: ", "  name: 7"),
            |t| t.replace("  name: ", "  name: ~"),
            |t| t.replace("  name: ", "  name: null #"),
            |t| t.replace("server: ", "server: \"https://[::1]:6443\" #"),
            |t| t.replace("user:\n", "user: {}\n"),
            |t| t.replace("preferences: {}", "preferences:"),
            |t| t.replace("\n", "\r\n"),
            |t| t.replace("  user:\n    client", "  user:\n      client"),
            |t| t.replace("- name:", "-   name:"),
            |t| {
                t.replace(
                    "client-certificate-data: ",
                    "client-certificate-data: >-\n      ",
                )
            },
            |t| t.replace("users:", "users: []\nusers2:"),
            |t| t.replace("contexts:\n", "contexts:\n- null\n"),
            |t| t.replace("cluster:\n", "cluster:\n    server: dup\n"),
        ];
        let mut answered = 0;
        for (path, text) in fixture_kubeconfigs() {
            for (i, rewrite) in rewrites.iter().enumerate() {
                let changed = rewrite(&text);
                if let Some(raw) = fast(&changed) {
                    answered += 1;
                    assert_eq!(
                        Some(raw),
                        full(&changed),
                        "rewrite {i} of {}",
                        path.display()
                    );
                }
            }
        }
        assert!(
            answered > 20,
            "the fast path answered only {answered} rewrites"
        );
    }
}
