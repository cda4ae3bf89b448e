//! `certs renew`: every leaf certificate of a node that expires within a window (or every leaf),
//! reissued as it is — subject, SANs, key and usages kept, a new serial and validity — by the
//! [`Issuer`] `reissue` uses, into one bundle. Certificate files, kubeconfigs' embedded client
//! certificates and the files kubeconfigs reference are all leaves; CAs are not.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::bundle::Manifest;
use super::reissue::{Action, Issuer, Outcome, Policy};
use super::target::{self, Reissuable, Scope};
use crate::error::{Error, Result};
use crate::pki::inventory::{CertEntry, Inventory, Status};
use crate::pki::scan::{self, ScanRequest};
use crate::pki::Role;
use crate::spec::SanEdit;

pub struct RenewRequest<'a> {
    /// Files or directories; empty means the standard locations under `root`.
    pub paths: &'a [PathBuf],
    pub root: &'a Path,
    /// Seconds: a leaf expiring sooner than this (or expired) is due.
    pub within: i64,
    /// Every leaf is due.
    pub all: bool,
    /// A CA (certificate, key) for the leaves it signed; the others' CAs are found as reissue
    /// finds them.
    pub ca: Option<(&'a Path, &'a Path)>,
    /// Seconds; default: each certificate's own validity period.
    pub validity: Option<i64>,
    pub now: i64,
}

pub struct Renew {
    /// Every leaf read: due ones reissued or refused, the others unchanged. Scan order.
    pub outcomes: Vec<Outcome>,
    /// Status of each outcome's original at `now` with the window (same order).
    pub statuses: Vec<Status>,
    /// The bundle of the reissued leaves; `None` when nothing was.
    pub manifest: Option<Manifest>,
    /// What was read.
    pub scanned: Vec<PathBuf>,
}

impl Renew {
    pub fn count(&self, action: Action) -> usize {
        self.outcomes.iter().filter(|o| o.action == action).count()
    }
}

pub fn renew(req: &RenewRequest) -> Result<Renew> {
    // Absolute from the start: every location in the report, the bundle and the CA search.
    let root = absolute(req.root)?;
    let scanned = scan::resolve_paths(req.paths, &root)?
        .iter()
        .map(|p| absolute(p))
        .collect::<Result<Vec<_>>>()?;
    let inventory = scan::scan(&ScanRequest {
        paths: &scanned,
        root: &root,
        now: req.now,
        warn_within: req.within,
    })?;
    let edit = SanEdit::default();
    let policy = Policy {
        edit: &edit,
        new_key: false,
        key_algo: None,
        validity: req.validity,
        now: req.now,
    };
    let scope = Scope {
        inventory: &inventory,
        name: scanned
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    };
    let mut issuer = Issuer::for_node(policy, req.ca, scope, &root)?;
    let mut outcomes = Vec::new();
    let mut statuses = Vec::new();
    let mut seen = HashSet::new();
    for entry in inventory.certificates.iter().filter(|c| !c.info.is_ca) {
        let path = absolute(&entry.location.path)?;
        let user = user_of(entry);
        if !seen.insert((path.clone(), entry.location.index, user.clone())) {
            continue;
        }
        let status = Status::at(
            req.now,
            req.within,
            entry.info.not_before,
            entry.info.not_after,
        );
        let due = req.all || matches!(status, Status::Expired | Status::Expiring);
        let outcome = if !due {
            Outcome::unchanged(
                as_target(entry, path, user),
                format!(
                    "not due: valid until {}, outside the window",
                    crate::duration::rfc3339(entry.info.not_after)
                ),
            )
        } else if entry.location.index > 0 {
            Outcome::refused(
                as_target(entry, path, user),
                format!(
                    "it is certificate #{} of its file, and only the first certificate of a file is reissued (the rest is its chain)",
                    entry.location.index
                ),
            )
        } else {
            match load(entry, &path, user.as_deref()) {
                Ok(t) => {
                    let mut o = issuer.issue(t);
                    if o.action == Action::Refused {
                        if let Some(why) = self_made(entry, &inventory) {
                            o.reason = Some(why);
                        }
                    }
                    o
                }
                Err(e) => Outcome::refused(as_target(entry, path, user), e.to_string()),
            }
        };
        outcomes.push(outcome);
        statuses.push(status);
    }
    let manifest = Issuer::bundle(&outcomes, req.now)?;
    Ok(Renew {
        outcomes,
        statuses,
        manifest,
        scanned,
    })
}

/// The kubeconfig user of an embedded client certificate (`users[NAME].client-certificate-data`).
fn user_of(entry: &CertEntry) -> Option<String> {
    entry
        .location
        .embedded
        .as_deref()
        .and_then(|e| e.strip_prefix("users["))
        .and_then(|e| e.rsplit_once("]."))
        .map(|(name, _)| name.to_string())
}

/// The target as `reissue` loads it: the file read again, the certificate (or the kubeconfig
/// user) that is this entry.
fn load(entry: &CertEntry, path: &Path, user: Option<&str>) -> Result<Reissuable> {
    target::load(path)?
        .into_iter()
        .find(|t| t.user.as_deref() == user && t.info.der == entry.info.der)
        .ok_or_else(|| Error::Input {
            path: path.to_path_buf(),
            expected: "the certificate the scan found in it".into(),
            found: "a file that changed since (run renew again)".into(),
        })
}

/// A target left alone: what the scan read is all its report needs.
fn as_target(entry: &CertEntry, path: PathBuf, user: Option<String>) -> Reissuable {
    Reissuable {
        path,
        user,
        info: entry.info.clone(),
        role: entry.role,
        bytes: Vec::new(),
        key_format: None,
        mode: None,
    }
}

/// A kubelet serving certificate signed by the CA the kubelet made for itself (in the same file,
/// its key nowhere): no CA on the node can renew it, the kubelet can.
fn self_made(entry: &CertEntry, inv: &Inventory) -> Option<String> {
    let ca = &inv.certificates[entry.signed_by?];
    let own = ca.location.path == entry.location.path && ca.location.embedded.is_none();
    if entry.role != Role::Kubelet || !own || ca.key.is_some() {
        return None;
    }
    Some(format!(
        "signed by `{}` ({}), the CA the kubelet made for itself, whose key is not on the node: \
         delete {} and its key and restart the kubelet to have it make a new one \
         (or let the cluster CA sign it: serverTLSBootstrap)",
        ca.info.subject,
        ca.location,
        entry.location.path.display()
    ))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}
