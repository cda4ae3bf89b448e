//! The result documents `reissue -o json` and `renew -o json` print (`certs.reissue/v1`,
//! `certs.renew/v1`, README.md): per target its action, serials, SAN diff and why; `changed`
//! for automation. Built from the outcomes and the bundle, pure.

use serde::Serialize;

use super::bundle::{Manifest, SanDiff};
use super::reissue::{Action, Outcome};
use crate::pki::inventory::Status;
use crate::pki::Role;

#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    /// The instant certificates were issued (and, for renew, judged) at.
    pub now: String,
    /// Whether a bundle was written (with `--dry-run`: whether one would be).
    pub changed: bool,
    pub dry_run: bool,
    /// The bundle directory written, absolute; `null` when none was.
    pub bundle: Option<String>,
    /// renew: the window, in seconds (`null` with `--all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within_seconds: Option<Option<i64>>,
    /// renew: what was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanned: Option<Vec<String>>,
    pub counts: Counts,
    pub files: Vec<FileReport>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub reissued: usize,
    pub unchanged: usize,
    pub refused: usize,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    /// The file, absolute.
    pub target: String,
    /// For a kubeconfig's embedded client certificate: its user.
    pub user: Option<String>,
    pub role: Role,
    pub subject: String,
    pub action: Action,
    /// Why it was refused, or why it is unchanged.
    pub reason: Option<String>,
    /// renew: the original's status at `now` with the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// The CA that signed the new certificate.
    pub ca: Option<String>,
    pub old_serial: String,
    pub new_serial: Option<String>,
    pub not_after: String,
    pub new_not_after: Option<String>,
    pub sans: SanDiff,
    /// `kept` or `new`, when reissued.
    pub key: Option<&'static str>,
    /// Where the new file is inside the bundle, and the mode it is installed with (octal).
    pub bundle_path: Option<String>,
    pub mode: Option<String>,
    /// Said on stderr too (validity clamped to the CA's end …).
    pub warnings: Vec<String>,
}

/// The document. `statuses` (renew) has one entry per outcome; `bundle` is the directory written.
pub fn build(
    schema: &'static str,
    now: i64,
    outcomes: &[Outcome],
    statuses: Option<&[Status]>,
    manifest: Option<&Manifest>,
    bundle: Option<String>,
    dry_run: bool,
) -> Report {
    let mut counts = Counts::default();
    let files = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            match o.action {
                Action::Reissued => counts.reissued += 1,
                Action::Unchanged => counts.unchanged += 1,
                Action::Refused => counts.refused += 1,
            }
            let reissued = o.action == Action::Reissued;
            let issued = o.issued.as_ref().filter(|_| reissued);
            let path = o.target.path.display().to_string();
            let file = manifest
                .filter(|_| reissued)
                .and_then(|m| m.files.iter().find(|f| f.target == o.target.path));
            FileReport {
                target: path,
                user: o.target.user.clone(),
                role: o.target.role,
                subject: o.target.info.subject.clone(),
                action: o.action,
                reason: o.reason.clone(),
                status: statuses.map(|s| s[i].as_str()),
                ca: o.ca.as_ref().filter(|_| reissued).map(|(l, _)| l.clone()),
                old_serial: o.target.info.serial.clone(),
                new_serial: issued.map(|i| i.info.serial.clone()),
                not_after: crate::duration::rfc3339(o.target.info.not_after),
                new_not_after: issued.map(|i| crate::duration::rfc3339(i.info.not_after)),
                sans: o.diff.clone(),
                key: issued.map(|i| if i.new_key.is_some() { "new" } else { "kept" }),
                bundle_path: file.map(|f| f.bundle_path.display().to_string()),
                mode: file.map(|f| f.mode.clone()),
                warnings: issued.map(|i| i.warnings.clone()).unwrap_or_default(),
            }
        })
        .collect();
    Report {
        schema,
        now: crate::duration::rfc3339(now),
        changed: counts.reissued > 0 && (bundle.is_some() || dry_run),
        dry_run,
        bundle,
        within_seconds: None,
        scanned: None,
        counts,
        files,
    }
}
