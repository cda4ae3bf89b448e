//! What to reissue: a certificate file (its first certificate; the rest of the file is chain) or
//! a kubeconfig's embedded client certificate — and the CA that signed it, found in the same
//! tree by signature when not given.

use std::path::{Path, PathBuf};

use super::{Ca, SigningKey};
use crate::error::{Error, Result};
use crate::pki::cert::CertInfo;
use crate::pki::decode::{decode, Item};
use crate::pki::inventory::Location;
use crate::pki::kubeconfig::Source;
use crate::pki::Role;

/// A certificate to reissue (named apart from [`crate::endpoint::Target`], an endpoint to probe).
#[derive(Debug, Clone)]
pub struct Reissuable {
    pub path: PathBuf,
    /// For a kubeconfig: the user whose client certificate this is.
    pub user: Option<String>,
    pub info: CertInfo,
    pub role: Role,
    /// The file as it is now (rewritten with the new certificate in the bundle).
    pub bytes: Vec<u8>,
    /// For a kubeconfig user: the format of the embedded key, kept when a new key is made.
    pub key_format: Option<crate::pki::key::KeyFormat>,
    /// The file's permission bits, given to its replacement.
    pub mode: Option<u32>,
}

pub fn load(path: &Path) -> Result<Vec<Reissuable>> {
    // Absolute from here on: the CA search, the key beside it and the bundle layout all walk
    // up from the target's directory, which a bare `apiserver.crt` does not name.
    let path = &std::path::absolute(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes = crate::sys::fs::read_file(path)?;
    let mode = crate::sys::fs::mode(path);
    let decoded = decode(path, &bytes);
    let input_err = |found: String| Error::Input {
        path: path.to_path_buf(),
        expected: "a certificate (PEM or DER) or a kubeconfig with an embedded client certificate"
            .into(),
        found,
    };
    let mut out = Vec::new();
    for item in decoded.items {
        match item {
            Item::Cert { index: 0, info } => {
                let role = crate::pki::role::detect(path, &info);
                out.push(Reissuable {
                    path: path.to_path_buf(),
                    user: None,
                    info: *info,
                    role,
                    bytes: bytes.clone(),
                    key_format: None,
                    mode,
                });
            }
            Item::Kubeconfig(kc) => {
                for user in &kc.users {
                    if let Some(Source::Embedded(info)) = &user.client_cert {
                        let role = crate::pki::role::detect(path, info);
                        out.push(Reissuable {
                            path: path.to_path_buf(),
                            user: Some(user.name.clone()),
                            info: (**info).clone(),
                            role,
                            bytes: bytes.clone(),
                            key_format: match &user.client_key {
                                Some(Source::Embedded(k)) => Some(k.format),
                                _ => None,
                            },
                            mode,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    if out.is_empty() {
        let found = decoded
            .problems
            .first()
            .cloned()
            .unwrap_or_else(|| "no certificate".into());
        return Err(input_err(found));
    }
    Ok(out)
}

/// Loads a CA from explicit files.
pub fn explicit_ca(cert: &Path, key: &Path) -> Result<Ca> {
    let bytes = crate::sys::fs::read_file(cert)?;
    let cert_err = |found: String| Error::Input {
        path: cert.to_path_buf(),
        expected: "a CA certificate".into(),
        found,
    };
    let info = decode(cert, &bytes)
        .items
        .into_iter()
        .find_map(|i| match i {
            Item::Cert { info, .. } => Some(*info),
            _ => None,
        })
        .ok_or_else(|| cert_err("no certificate".into()))?;
    let key_loc = Location {
        path: key.to_path_buf(),
        index: 0,
        embedded: None,
    };
    let signer = load_key(&key_loc)?;
    Ca::new(
        info,
        cert.display().to_string(),
        signer,
        &key.display().to_string(),
    )
    .map_err(Error::from)
}

/// Scans of the directories around the targets, each read once however many targets share it
/// (kubespray's nine etcd certificates sit in one directory).
pub struct Scans {
    now: i64,
    /// Where the references kubeconfigs make (absolute paths on the node) resolve.
    root: PathBuf,
    done: std::collections::HashMap<PathBuf, crate::pki::Inventory>,
}

impl Scans {
    pub fn new(now: i64) -> Scans {
        Scans::under_root(now, Path::new("/"))
    }

    /// Scans of a node mounted at `root` (`certs renew --root`).
    pub fn under_root(now: i64, root: &Path) -> Scans {
        Scans {
            now,
            root: root.to_path_buf(),
            done: Default::default(),
        }
    }

    pub fn of(&mut self, dir: &Path) -> Result<&crate::pki::Inventory> {
        if !self.done.contains_key(dir) {
            let req = crate::pki::scan::ScanRequest {
                paths: &[dir.to_path_buf()],
                root: &self.root,
                now: self.now,
                warn_within: 0,
            };
            let inv = crate::pki::scan::scan(&req)?;
            self.done.insert(dir.to_path_buf(), inv);
        }
        Ok(&self.done[dir])
    }
}

/// An inventory already read (the whole node, for `certs renew`), searched for a target's CA
/// after the target's own directory and before its parent.
pub struct Scope<'a> {
    pub inventory: &'a crate::pki::Inventory,
    /// What it covers, for messages (`the standard locations under /`).
    pub name: String,
}

/// Finds the CA that signed `target` among the certificates under the target's directory and
/// its parent (kubeadm keeps `pki/etcd/ca.crt` below `pki/`, kubeconfigs sit above `pki/`).
/// Targets are absolute ([`load`]), so both directories are named.
pub fn discover_ca(target: &Reissuable, scans: &mut Scans) -> Result<Ca> {
    discover_ca_in(target, scans, None)
}

/// [`discover_ca`], with `node` (an inventory already read) searched instead of the parent
/// directory: the kubelet's client certificate in `/var/lib/kubelet/pki` is signed by
/// `/etc/kubernetes/pki/ca.crt`, and walking `/var/lib/kubelet` (pod volumes) would be slow and
/// find only keyless copies of CAs. In each place, a CA whose signature verifies the target and
/// whose private key is there wins. A CA found without its key in the target's directory sends
/// the search on to `node` (never to the parent directory), and is reported if that has none.
pub fn discover_ca_in(target: &Reissuable, scans: &mut Scans, node: Option<&Scope>) -> Result<Ca> {
    let dir = target.path.parent().unwrap_or(Path::new("/"));
    let mut tried = Vec::new();
    let mut keyless: Option<String> = None;
    let mut places: Vec<Option<&Path>> = vec![Some(dir)];
    match node {
        Some(_) => places.push(None),
        None => places.extend(dir.parent().map(Some)),
    }
    for place in places {
        let inv = match place {
            Some(_) if keyless.is_some() => break,
            Some(p) => {
                tried.push(p.display().to_string());
                scans.of(p)?
            }
            None => {
                let scope = node.expect("pushed only with a scope");
                tried.push(scope.name.clone());
                scope.inventory
            }
        };
        let signers = inv.certificates.iter().filter(|c| {
            c.info.is_ca && c.location.embedded.is_none() && target.info.is_signed_by(&c.info)
        });
        let Some(found) =
            signers.min_by_key(|c| (c.key.is_none(), c.location.path.components().count()))
        else {
            continue;
        };
        let location = found.location.to_string();
        let Some(key) = found.key.map(|k| &inv.keys[k]) else {
            keyless.get_or_insert(location);
            continue;
        };
        let signer = load_key(&key.location)?;
        return Ca::new(
            found.info.clone(),
            location,
            signer,
            &key.location.to_string(),
        )
        .map_err(Error::from);
    }
    Err(Error::Usage(match keyless {
        Some(location) => format!(
            "found the CA that signed `{}` ({location}) but no private key that matches it beside it; pass --ca and --ca-key",
            target.path.display()
        ),
        None => format!(
            "no CA certificate under {} verifies `{}` (issuer `{}`); pass --ca and --ca-key",
            tried.join(" or "),
            target.path.display(),
            target.info.issuer
        ),
    }))
}

/// Reads the private key at `loc` (the n-th key block of a file) into a signer.
fn load_key(loc: &Location) -> Result<SigningKey> {
    let bytes = crate::sys::fs::read_file(&loc.path)?;
    let text = std::str::from_utf8(&bytes).ok();
    let err = |found: String| Error::Input {
        path: loc.path.clone(),
        expected: "a PEM private key".into(),
        found,
    };
    let blocks = text
        .map(pem::parse_many)
        .transpose()
        .map_err(|e| err(format!("unreadable PEM ({e})")))?
        .unwrap_or_default();
    let block = blocks
        .iter()
        .filter(|b| b.tag().ends_with("KEY"))
        .nth(loc.index)
        .ok_or_else(|| err("no private key block".into()))?;
    let encrypted = block
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.contains("ENCRYPTED"));
    SigningKey::from_pem_block(block.tag(), block.contents(), encrypted)
        .map_err(|e| err(e.to_string()))
}
