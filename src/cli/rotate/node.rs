//! Reading a node for a rotation: its trust anchors (CA files named by trust flags, by
//! kubeconfig clusters and on the command line, and the kubeconfigs), its signing CA files (a
//! CA file with its key beside it, controller-manager's `--cluster-signing-*` files) and the
//! leaves each CA signed, and from those the stage it is in.

use std::path::{Path, PathBuf};

use super::absolute;
use crate::error::{Error, Result};
use crate::pki::cert::CertInfo;
use crate::pki::Inventory;
use crate::rotate::stage::{self, Anchor, Facts, Signer, Stage};
use crate::rotate::{certs_in, holds};

/// Flags (and kubelet config keys read as flags) that name a CA file a component trusts.
pub const TRUST_FLAGS: &[&str] = &[
    "client-ca-file",
    "trusted-ca-file",
    "peer-trusted-ca-file",
    "etcd-cafile",
    "requestheader-client-ca-file",
    "root-ca-file",
    "kubelet-certificate-authority",
];

/// Extra places kubeconfigs are read from, besides the standard PKI locations.
const KUBECONFIGS: &[&str] = &["/root/.kube/config"];

/// A CA file a component trusts (or a kubeconfig names), with why it is one.
pub struct AnchorFile {
    pub path: PathBuf,
    pub why: Vec<String>,
    pub bytes: Vec<u8>,
}

pub struct KubeconfigFile {
    pub path: PathBuf,
    pub text: String,
}

/// Every trust anchor of the node: CA files named by trust flags, by kubeconfig clusters and on
/// the command line, and the kubeconfigs.
pub struct Anchors {
    pub files: Vec<AnchorFile>,
    pub kubeconfigs: Vec<KubeconfigFile>,
}

impl Anchors {
    fn add_file(&mut self, path: PathBuf, why: String) {
        if let Some(f) = self.files.iter_mut().find(|f| f.path == path) {
            if !f.why.contains(&why) {
                f.why.push(why);
            }
            return;
        }
        // A file a flag names that is not on this node is no anchor here (preflight says so).
        let Some(bytes) = crate::sys::fs::read_opt(&path) else {
            return;
        };
        self.files.push(AnchorFile {
            path,
            why: vec![why],
            bytes,
        });
    }

    /// Every certificate an anchor holds, with where.
    pub fn certs(&self) -> Vec<(String, CertInfo)> {
        let mut out = Vec::new();
        for f in &self.files {
            for c in certs_in(&f.bytes) {
                out.push((f.path.display().to_string(), c));
            }
        }
        for k in &self.kubeconfigs {
            for c in crate::edit::kubeconfig::clusters(&k.text).unwrap_or_default() {
                for cert in ca_data(&c) {
                    out.push((format!("{} cluster {}", k.path.display(), c.name), cert));
                }
            }
        }
        out
    }
}

/// The certificates of a kubeconfig cluster's `certificate-authority-data`.
pub fn ca_data(c: &crate::edit::kubeconfig::Cluster) -> Vec<CertInfo> {
    use base64::Engine;
    c.ca_data
        .as_deref()
        .and_then(|data| {
            let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .ok()
        })
        .map(|pem| certs_in(&pem))
        .unwrap_or_default()
}

/// Where a file a kubeconfig references is: an absolute path on the node (under `root`), or a
/// path relative to the kubeconfig's directory.
fn resolve(root: &Path, kubeconfig: &Path, reference: &str) -> PathBuf {
    let r = Path::new(reference);
    if r.is_absolute() {
        crate::sys::fs::under_root(root, r)
    } else {
        kubeconfig.parent().unwrap_or(Path::new("/")).join(r)
    }
}

/// Reads the node's anchors: trust flags of every component, the kubeconfigs of the standard
/// locations, of `/root/.kube/config`, of the components' files and of `paths`, and the CA files
/// those kubeconfigs name.
pub fn anchors(root: &Path, paths: &[PathBuf], now: i64) -> Result<Anchors> {
    let node = crate::sys::node::read(root);
    let mut out = Anchors {
        files: Vec::new(),
        kubeconfigs: Vec::new(),
    };
    for c in &node {
        for flag in TRUST_FLAGS {
            if let Some(p) = c.path(root, flag) {
                out.add_file(p, format!("{} {}", c.kind, c.origin(flag)));
            }
        }
    }
    let mut scan: Vec<PathBuf> = crate::pki::scan::resolve_paths(&[], root).unwrap_or_default();
    for extra in KUBECONFIGS {
        let p = crate::sys::fs::under_root(root, Path::new(extra));
        if crate::sys::fs::is_file(&p) {
            scan.push(p);
        }
    }
    for p in paths {
        let p = absolute(p)?;
        if crate::sys::fs::is_absent(&p) {
            return Err(Error::Input {
                path: p,
                expected: "a file or directory to read".into(),
                found: "nothing there".into(),
            });
        }
        scan.push(p);
    }
    scan.dedup();
    let mut kubeconfigs: Vec<PathBuf> = Vec::new();
    if !scan.is_empty() {
        let inv = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
            paths: &scan,
            root,
            now,
            warn_within: 0,
        })?;
        kubeconfigs.extend(inv.kubeconfigs.iter().map(|k| k.path.clone()));
        // A CA file named on the command line is an anchor when it holds the old CA.
        for p in paths {
            let p = absolute(p)?;
            if crate::sys::fs::is_file(&p) && !inv.kubeconfigs.iter().any(|k| k.path == p) {
                out.add_file(p, "named on the command line".into());
            }
        }
    }
    for c in &node {
        for f in &c.files {
            let looks = crate::sys::fs::read_opt(f)
                .and_then(|b| String::from_utf8(b).ok())
                .is_some_and(|t| crate::pki::kubeconfig::looks_like(&t));
            if looks {
                kubeconfigs.push(f.clone());
            }
        }
    }
    for path in kubeconfigs {
        let path = absolute(&path)?;
        if out.kubeconfigs.iter().any(|k| k.path == path) {
            continue;
        }
        let text = crate::sys::fs::read_text(&path, "a kubeconfig (YAML text)")?;
        if let Ok(clusters) = crate::edit::kubeconfig::clusters(&text) {
            for c in clusters {
                if let (None, Some(f)) = (&c.ca_data, &c.ca_file) {
                    out.add_file(
                        resolve(root, &path, f),
                        format!(
                            "{} clusters[{}].certificate-authority",
                            path.display(),
                            c.name
                        ),
                    );
                }
            }
        }
        out.kubeconfigs.push(KubeconfigFile { path, text });
    }
    Ok(out)
}

/// The CA the node already trusts beside the old one, made to follow it
/// ([`crate::rotate::ca::is_successor`]); several different ones are an error.
pub fn successor(anchors: &Anchors, old: &CertInfo) -> Result<Option<(CertInfo, String)>> {
    let mut found: Vec<(CertInfo, String)> = Vec::new();
    for (at, c) in anchors.certs() {
        if crate::rotate::ca::is_successor(old, &c) && !found.iter().any(|(f, _)| f.der == c.der) {
            found.push((c, at));
        }
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(Error::Usage(format!(
            "expected at most one CA following `{}` on this node, found {} ({}): name the new CA with --new-ca FILE --new-ca-key FILE",
            old.subject,
            found.len(),
            found
                .iter()
                .map(|(c, at)| format!("{} in {at}", c.subject))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A signing CA file: a file whose first certificate is the old or the new CA with a private
/// key beside it (or named by `--cluster-signing-key-file`).
pub struct SignerFile {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub bytes: Vec<u8>,
    /// Why it signs: `key beside it`, `kube-controller-manager --cluster-signing-cert-file`.
    pub why: String,
}

/// A leaf one of the two CAs signed: where it is, and the inventory entry.
pub struct Leaf {
    /// `path` or `path users[NAME].client-certificate-data`.
    pub at: String,
    pub entry: usize,
    pub by_old: bool,
}

/// Everything a stage needs to know about the node.
pub struct Survey {
    pub anchors: Anchors,
    pub inventory: Inventory,
    pub signers: Vec<SignerFile>,
    pub leaves: Vec<Leaf>,
    pub facts: Facts,
}

impl Survey {
    pub fn stage(&self) -> (Stage, Vec<String>) {
        stage::judge(&self.facts)
    }

    pub fn old_leaves(&self) -> impl Iterator<Item = &Leaf> {
        self.leaves.iter().filter(|l| l.by_old)
    }
}

/// The key beside a CA file, by the names installers give it (`ca.key`, `ca-key.pem`).
fn key_beside(cert: &Path) -> Option<PathBuf> {
    crate::rollout::rebase::key_candidates(cert)
        .into_iter()
        .take(2)
        .find(|p| crate::sys::fs::is_file(p))
}

/// Reads the node: anchors, signing files and leaves of `old` and `new` (when known).
pub fn survey(
    root: &Path,
    paths: &[PathBuf],
    now: i64,
    old: &CertInfo,
    new: Option<&CertInfo>,
) -> Result<Survey> {
    let anchors = anchors(root, paths, now)?;
    let is_new = |c: &CertInfo| new.is_some_and(|n| n.der == c.der);
    let mut scan = crate::pki::scan::resolve_paths(&[], root).unwrap_or_default();
    scan.extend(anchors.kubeconfigs.iter().map(|k| k.path.clone()));
    for p in paths {
        scan.push(absolute(p)?);
    }
    scan.sort();
    scan.dedup();
    let inventory = if scan.is_empty() {
        Inventory::default()
    } else {
        crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
            paths: &scan,
            root,
            now,
            warn_within: 0,
        })?
    };

    // Signing files: a CA file holding either CA first with a key beside it, among the anchors
    // and the files scanned, and the controller-manager's signing flags.
    let mut signers: Vec<SignerFile> = Vec::new();
    let mut add_signer = |cert: PathBuf, key: Option<PathBuf>, why: String| {
        if signers.iter().any(|s| s.cert == cert) {
            return;
        }
        let Some(bytes) = crate::sys::fs::read_opt(&cert) else {
            return;
        };
        let first_is_ours = certs_in(&bytes)
            .first()
            .is_some_and(|c| c.der == old.der || is_new(c));
        let Some(key) = key.or_else(|| key_beside(&cert)) else {
            return;
        };
        if first_is_ours {
            signers.push(SignerFile {
                cert,
                key,
                bytes,
                why,
            });
        }
    };
    for c in crate::sys::node::read(root) {
        if let Some(cert) = c.path(root, "cluster-signing-cert-file") {
            let why = format!("{} {}", c.kind, c.origin("cluster-signing-cert-file"));
            add_signer(cert, c.path(root, "cluster-signing-key-file"), why);
        }
    }
    for f in &anchors.files {
        add_signer(f.path.clone(), None, "its key beside it".into());
    }
    for e in &inventory.certificates {
        if e.location.embedded.is_none() && e.location.index == 0 && e.info.is_ca {
            let key = e.key.map(|k| inventory.keys[k].location.path.clone());
            add_signer(e.location.path.clone(), key, "its key beside it".into());
        }
    }

    let mut facts = Facts::default();
    for f in &anchors.files {
        let held = certs_in(&f.bytes);
        let (o, n) = (holds(&held, old), held.iter().any(is_new));
        if o || n {
            facts.anchors.push(Anchor {
                path: f.path.display().to_string(),
                old: o,
                new: n,
            });
        }
    }
    for k in &anchors.kubeconfigs {
        for c in crate::edit::kubeconfig::clusters(&k.text).unwrap_or_default() {
            let held = ca_data(&c);
            let (o, n) = (holds(&held, old), held.iter().any(is_new));
            if o || n {
                facts.anchors.push(Anchor {
                    path: format!("{} clusters[{}]", k.path.display(), c.name),
                    old: o,
                    new: n,
                });
            }
        }
    }
    for s in &signers {
        facts.signers.push(Signer {
            path: s.cert.display().to_string(),
            new_first: certs_in(&s.bytes).first().is_some_and(is_new),
        });
    }
    let mut leaves: Vec<Leaf> = Vec::new();
    for (i, c) in inventory.certificates.iter().enumerate() {
        if c.info.is_ca {
            continue;
        }
        let at = match &c.location.embedded {
            Some(e) => format!("{} {e}", c.location.path.display()),
            None => c.location.path.display().to_string(),
        };
        if leaves.iter().any(|l| l.at == at) {
            continue;
        }
        let by_old = old.may_have_issued(&c.info) && c.info.is_signed_by(old);
        let by_new = new.is_some_and(|n| n.may_have_issued(&c.info) && c.info.is_signed_by(n));
        if by_old {
            facts.old_leaves.push(at.clone());
        } else if by_new {
            facts.new_leaves.push(at.clone());
        } else {
            continue;
        }
        leaves.push(Leaf {
            at,
            entry: i,
            by_old,
        });
    }
    Ok(Survey {
        anchors,
        inventory,
        signers,
        leaves,
        facts,
    })
}
