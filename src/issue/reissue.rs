//! The whole `reissue` operation for a set of targets: load them, find their CAs, apply the SAN
//! edit, sign, verify, and lay out the bundle. Nothing is written here; the caller writes the
//! bundle (or, for a dry run, only prints it).
//!
//! Each target ends [`Action::Reissued`], [`Action::Unchanged`] (a SAN edit that changes
//! nothing: nothing to sign) or [`Action::Refused`] (with why). [`Issuer`] does one target at a
//! time and is shared with `certs renew` ([`super::renew`]).

use super::error::Error as IssueError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::bundle::{self, CaRef, Manifest, Reissued, SanDiff};
use super::target::{self, Reissuable, Scans, Scope};
use super::{sign, Ca, Issued, KeyPolicy, Request};
use crate::error::{Error, Result};
use crate::pki::key::{KeyAlgo, KeyFormat};
use crate::spec::san::{self, EditOutcome, San, SanEdit};

pub struct ReissueRequest<'a> {
    pub targets: &'a [PathBuf],
    pub edit: &'a SanEdit,
    /// Explicit CA certificate and key; otherwise found beside each target.
    pub ca: Option<(&'a Path, &'a Path)>,
    pub new_key: bool,
    pub key_algo: Option<KeyAlgo>,
    pub validity: Option<i64>,
    pub now: i64,
}

/// What became of one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new certificate was signed (and is in the bundle).
    Reissued,
    /// Nothing to do: the SAN edit changes nothing, or (renew) the certificate is not due.
    Unchanged,
    /// Not reissued; `reason` says why.
    Refused,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Reissued => "reissued",
            Action::Unchanged => "unchanged",
            Action::Refused => "refused",
        }
    }
}

/// One target and what became of it.
pub struct Outcome {
    pub target: Reissuable,
    pub action: Action,
    /// Why it was refused, or why nothing changed.
    pub reason: Option<String>,
    /// The CA that signed the new certificate (location, subject).
    pub ca: Option<(String, String)>,
    /// The SAN edit as applied to this target; `None` when refused before it could be.
    pub edit: Option<EditOutcome>,
    /// SANs both dropped and added that the certificate carries: each pair cancels out.
    pub cancelled: Vec<San>,
    pub diff: SanDiff,
    pub issued: Option<Issued>,
    key_file: Option<(PathBuf, KeyFormat, Vec<u8>)>,
}

impl Outcome {
    /// A target left alone, with why.
    pub fn unchanged(target: Reissuable, reason: String) -> Outcome {
        Outcome::without(target, Action::Unchanged, reason)
    }

    /// A target refused, with why.
    pub fn refused(target: Reissuable, reason: String) -> Outcome {
        Outcome::without(target, Action::Refused, reason)
    }

    fn without(target: Reissuable, action: Action, reason: String) -> Outcome {
        let current = san::from_cert(&target.info.sans).unwrap_or_default();
        Outcome {
            diff: SanDiff::unchanged(&current),
            target,
            action,
            reason: Some(reason),
            ca: None,
            edit: None,
            cancelled: Vec::new(),
            issued: None,
            key_file: None,
        }
    }
}

pub struct Reissue {
    pub outcomes: Vec<Outcome>,
    /// The bundle of the reissued targets; `None` when no target was reissued.
    pub manifest: Option<Manifest>,
}

impl Reissue {
    pub fn refused(&self) -> usize {
        self.count(Action::Refused)
    }

    pub fn count(&self, action: Action) -> usize {
        self.outcomes.iter().filter(|o| o.action == action).count()
    }
}

/// What every target gets: the edit, the key policy, the validity, the instant.
pub struct Policy<'a> {
    pub edit: &'a SanEdit,
    pub new_key: bool,
    pub key_algo: Option<KeyAlgo>,
    pub validity: Option<i64>,
    pub now: i64,
}

/// Signs targets one at a time: finds each one's CA (each directory scanned once), applies the
/// edit and the key policy, signs and verifies. A problem with one target is that target's
/// [`Action::Refused`], never an early return: the caller decides what a refusal means.
pub struct Issuer<'a> {
    policy: Policy<'a>,
    explicit: Option<Ca>,
    /// Whether the explicit CA is the CA of every target (`reissue --ca`), or only of those it
    /// signed (`renew --ca`: the others are found as usual).
    explicit_for_all: bool,
    found: HashMap<String, Ca>,
    scans: Scans,
    node: Option<Scope<'a>>,
}

impl<'a> Issuer<'a> {
    /// `reissue`: the CA given is every target's, or each target's is found beside it.
    pub fn new(policy: Policy<'a>, ca: Option<(&Path, &Path)>) -> Result<Issuer<'a>> {
        let explicit = match ca {
            Some((cert, key)) => Some(target::explicit_ca(cert, key)?),
            None => None,
        };
        Ok(Issuer {
            scans: Scans::new(policy.now),
            policy,
            explicit,
            explicit_for_all: true,
            found: HashMap::new(),
            node: None,
        })
    }

    /// `renew`: the CA given (if any) for the targets it signed; the others' found beside them
    /// or in `node`, the inventory already read; kubeconfig references resolve under `root`.
    pub fn for_node(
        policy: Policy<'a>,
        ca: Option<(&Path, &Path)>,
        node: Scope<'a>,
        root: &Path,
    ) -> Result<Issuer<'a>> {
        let mut issuer = Issuer::new(policy, ca)?;
        issuer.explicit_for_all = false;
        issuer.scans = Scans::under_root(issuer.policy.now, root);
        issuer.node = Some(node);
        Ok(issuer)
    }

    fn ca_for(&mut self, t: &Reissuable) -> Result<&Ca> {
        let explicit = matches!(&self.explicit, Some(ca) if self.explicit_for_all || t.info.is_signed_by(&ca.info));
        if explicit {
            return Ok(self.explicit.as_ref().expect("checked above"));
        }
        let ca = target::discover_ca_in(t, &mut self.scans, self.node.as_ref())?;
        Ok(self.found.entry(ca.location.clone()).or_insert(ca))
    }

    /// One target, start to end.
    pub fn issue(&mut self, t: Reissuable) -> Outcome {
        let current = match san::from_cert(&t.info.sans) {
            Ok(c) => c,
            Err(e) => {
                return Outcome::refused(
                    t,
                    format!("expected a certificate whose SANs can be edited, found {e}"),
                )
            }
        };
        let (edit, cancelled) = cancel(self.policy.edit, &current);
        let outcome = match san::apply(&current, &edit, t.info.serves_tls()) {
            Ok(o) => o,
            Err(e) => return Outcome::refused(t, e.to_string()),
        };
        let diff = SanDiff::new(&current, &outcome);
        let mut done = Outcome {
            target: t,
            action: Action::Refused,
            reason: None,
            ca: None,
            edit: None,
            cancelled,
            diff,
            issued: None,
            key_file: None,
        };
        let same_sans = {
            let (mut a, mut b) = (current.clone(), outcome.sans.clone());
            a.sort();
            b.sort();
            a == b
        };
        done.edit = Some(outcome);
        // An edit that changes nothing is nothing to sign, unless a new key or validity is asked.
        // No edit at all is a renewal: that is always signed.
        if !self.policy.edit.is_empty()
            && same_sans
            && !self.policy.new_key
            && self.policy.validity.is_none()
        {
            done.action = Action::Unchanged;
            done.reason = Some(no_op_reason(&done));
            return done;
        }
        if let Err(e) = self.sign_into(&mut done) {
            done.reason = Some(e.to_string());
        }
        done
    }

    fn sign_into(&mut self, done: &mut Outcome) -> Result<(), IssueError> {
        let t = &done.target;
        let policy = match (self.policy.new_key, &self.policy.key_algo) {
            (false, _) => KeyPolicy::Keep,
            (true, Some(algo)) => KeyPolicy::New(algo.clone()),
            (true, None) => KeyPolicy::New(t.info.key.clone()),
        };
        let key_file = if self.policy.new_key && t.user.is_none() {
            Some(key_file_of(t, &mut self.scans).map_err(|e| IssueError::Sign(e.to_string()))?)
        } else {
            None
        };
        let (validity, now) = (self.policy.validity, self.policy.now);
        let sans = &done.edit.as_ref().expect("set before signing").sans;
        let ca = self
            .ca_for(t)
            .map_err(|e| IssueError::Sign(e.to_string()))?;
        let request = Request {
            original: &t.info,
            sans,
            policy,
            validity,
            now,
        };
        let issued = sign(ca, &request)?;
        done.ca = Some((ca.location.clone(), ca.info.subject.clone()));
        done.issued = Some(issued);
        done.key_file = key_file;
        done.action = Action::Reissued;
        Ok(())
    }

    /// The bundle of every reissued outcome (`None` when there is none).
    pub fn bundle(outcomes: &[Outcome], now: i64) -> Result<Option<Manifest>> {
        let items: Vec<Reissued> = outcomes
            .iter()
            .filter(|o| o.action == Action::Reissued)
            .filter_map(|o| {
                let (ca, _) = o.ca.as_ref()?;
                Some(Reissued {
                    target: &o.target,
                    ca: absolute(ca),
                    issued: o.issued.as_ref()?,
                    diff: o.diff.clone(),
                    key_file: o.key_file.clone(),
                })
            })
            .collect();
        if items.is_empty() {
            return Ok(None);
        }
        let files = bundle::files(&items)?;
        // bundle.json names one CA: the one that signed the most of its files (each file names
        // its own).
        let signers: Vec<&(String, String)> = outcomes
            .iter()
            .filter(|o| o.action == Action::Reissued)
            .filter_map(|o| o.ca.as_ref())
            .collect();
        let first_ca = signers
            .iter()
            .enumerate()
            .max_by_key(|(i, c)| {
                let n = signers.iter().filter(|d| d.0 == c.0).count();
                (n, std::cmp::Reverse(*i))
            })
            .map(|(_, c)| *c);
        Ok(Some(Manifest {
            schema: "certs.bundle/v1",
            created: crate::duration::rfc3339(now),
            ca: CaRef {
                certificate: first_ca.map(|(l, _)| absolute(l)).unwrap_or_default(),
                subject: first_ca.map(|(_, s)| s.clone()).unwrap_or_default(),
            },
            files,
        }))
    }
}

/// `certs reissue`: every target of every file named, with the same edit.
pub fn reissue(req: &ReissueRequest) -> Result<Reissue> {
    let mut targets = Vec::new();
    for path in req.targets {
        targets.extend(target::load(path)?);
    }
    let policy = Policy {
        edit: req.edit,
        new_key: req.new_key,
        key_algo: req.key_algo.clone(),
        validity: req.validity,
        now: req.now,
    };
    let mut issuer = Issuer::new(policy, req.ca)?;
    let outcomes: Vec<Outcome> = targets.into_iter().map(|t| issuer.issue(t)).collect();
    let manifest = Issuer::bundle(&outcomes, req.now)?;
    Ok(Reissue { outcomes, manifest })
}

/// The edit for one certificate: a SAN both dropped and added that the certificate carries is
/// left as it is (the pair cancels out). One it does not carry stays in both lists, and the
/// drop is refused as any drop of an absent SAN.
fn cancel(edit: &SanEdit, current: &[San]) -> (SanEdit, Vec<San>) {
    let cancelled: Vec<San> = edit
        .add
        .iter()
        .filter(|s| edit.drop.contains(s) && current.contains(s))
        .cloned()
        .collect();
    let keep = |v: &[San]| {
        v.iter()
            .filter(|s| !cancelled.contains(s))
            .cloned()
            .collect()
    };
    (
        SanEdit {
            add: keep(&edit.add),
            drop: keep(&edit.drop),
        },
        cancelled,
    )
}

fn no_op_reason(o: &Outcome) -> String {
    let list = |v: &[San]| {
        v.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut parts = Vec::new();
    if let Some(e) = &o.edit {
        if !e.already_present.is_empty() {
            parts.push(format!("already carries {}", list(&e.already_present)));
        }
    }
    if !o.cancelled.is_empty() {
        parts.push(format!(
            "dropping and adding {} cancels out",
            list(&o.cancelled)
        ));
    }
    if parts.is_empty() {
        "the SAN edit changes nothing".into()
    } else {
        format!("the SAN edit changes nothing: {}", parts.join("; "))
    }
}

/// Where a target's private key lives (to be replaced under `--new-key`), its format and bytes.
/// Without one on disk, the conventional name beside the certificate, PKCS#8.
fn key_file_of(t: &Reissuable, scans: &mut Scans) -> Result<(PathBuf, KeyFormat, Vec<u8>)> {
    let inv = scans.of(t.path.parent().unwrap_or(Path::new("/")))?;
    let entry = inv.certificates.iter().find(|c| {
        c.location.path == t.path && c.location.index == 0 && c.location.embedded.is_none()
    });
    if let Some(key) = entry.and_then(|c| c.key).map(|k| &inv.keys[k]) {
        if key.location.path == t.path {
            return Err(Error::Usage(format!(
                "{}: certificate and key share one file; --new-key cannot replace them separately",
                t.path.display()
            )));
        }
        let bytes = crate::sys::fs::read_file(&key.location.path)?;
        return Ok((key.location.path.clone(), key.info.format, bytes));
    }
    let name = t
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("cert");
    let key_name = match name.rsplit_once('.') {
        Some((stem, "pem")) => format!("{stem}-key.pem"),
        Some((stem, _)) => format!("{stem}.key"),
        None => format!("{name}.key"),
    };
    Ok((
        t.path.with_file_name(key_name),
        KeyFormat::Pkcs8,
        Vec::new(),
    ))
}

fn absolute(location: &str) -> String {
    std::path::absolute(location)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| location.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sans(v: &[&str]) -> Vec<San> {
        v.iter().map(|s| San::parse(s).unwrap()).collect()
    }

    #[test]
    fn drop_and_add_of_a_carried_san_cancels() {
        let current = sans(&["10.0.0.1", "master1"]);
        let edit = SanEdit {
            add: sans(&["10.0.0.1", "10.0.0.2"]),
            drop: sans(&["10.0.0.1", "10.0.0.9"]),
        };
        let (left, cancelled) = cancel(&edit, &current);
        assert_eq!(cancelled, sans(&["10.0.0.1"]));
        assert_eq!(left.add, sans(&["10.0.0.2"]));
        // 10.0.0.9 is not carried: its drop stays, to be refused like any absent drop.
        assert_eq!(left.drop, sans(&["10.0.0.9"]));
    }
}
