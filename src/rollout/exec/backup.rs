//! The backup of the original files a rollout replaces: written before the first swap, read
//! back by a swap to the old files and by a rollback.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{current_sha, is_new_file, Executor};
use crate::error::{Error, Result};
use crate::pki::cert::sha256_hex;
use crate::rollout::journal::Journal;
use crate::rollout::plan::Plan;

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BackupEntry {
    pub(super) target: PathBuf,
    pub(super) file: PathBuf,
    pub(super) mode: u32,
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
    pub(super) sha256: String,
    /// Nothing was at `target` (a file the bundle adds, `certs issue`): restoring it removes
    /// the file; there is no backup `file`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) absent: bool,
}

impl Executor<'_> {
    /// The original bytes (and recorded mode and owner) of every target that already holds
    /// the bundle's new file, from a backup of an earlier rollout in this state directory, each
    /// checked against the SHA-256 the bundle was made from. A target whose original is not
    /// there is refused: backing up the new file would leave no way back to the original.
    pub(super) fn originals(&self, plan: &Plan) -> Result<Vec<(usize, BackupEntry, Vec<u8>)>> {
        let mut out = Vec::new();
        let at_new: Vec<usize> = (0..plan.files.len())
            .filter(|&n| {
                let f = &plan.files[n];
                !is_new_file(f) && current_sha(&f.target).as_deref() == Some(f.new_sha256.as_str())
            })
            .collect();
        if at_new.is_empty() {
            return Ok(out);
        }
        let mut journals = Journal::archived(&self.state_dir)?;
        journals.extend(Journal::load(&self.state_dir)?);
        for n in at_new {
            let f = &plan.files[n];
            let found = journals.iter().rev().find_map(|j| {
                let entries = read_backup_manifest(&j.backup).ok()?;
                let e = entries
                    .into_iter()
                    .find(|e| e.target == f.target && !e.absent && e.sha256 == f.old_sha256)?;
                let bytes = crate::sys::fs::read_file(&e.file).ok()?;
                (sha256_hex(&bytes) == f.old_sha256).then_some((e, bytes))
            });
            match found {
                Some((e, bytes)) => out.push((n, e, bytes)),
                None => {
                    return Err(Error::Input {
                        path: f.target.clone(),
                        expected: format!(
                            "the file the bundle was made from (SHA-256 {}) or a backup of it in {}",
                            f.old_sha256,
                            self.state_dir.display()
                        ),
                        found: "the bundle's new file already while other targets are not, and no backup of the original here: a rollout of this bundle was interrupted elsewhere; finish it with `certs rollout resume` or `rollback` and that rollout's --state-dir".into(),
                    })
                }
            }
        }
        Ok(out)
    }

    pub(super) fn backup(
        &self,
        plan: &Plan,
        originals: &[(usize, BackupEntry, Vec<u8>)],
    ) -> Result<PathBuf> {
        let stamp = crate::duration::rfc3339((self.now)()).replace([':', '-'], "");
        let dir = self
            .state_dir
            .join("backups")
            .join(format!("{stamp}-{}", std::process::id()));
        crate::sys::fs::create_new_dir(&dir)?;
        let mut entries = Vec::new();
        for (n, f) in plan.files.iter().enumerate() {
            if is_new_file(f) {
                entries.push(BackupEntry {
                    target: f.target.clone(),
                    file: PathBuf::new(),
                    mode: f.mode,
                    uid: None,
                    gid: None,
                    sha256: String::new(),
                    absent: true,
                });
                continue;
            }
            let name = f
                .target
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let file = dir.join(format!("{n:03}-{name}"));
            // A target that holds the new file already: its original from an earlier backup.
            let (bytes, mode, (uid, gid)) = match originals.iter().find(|(i, ..)| *i == n) {
                Some((_, e, bytes)) => (bytes.clone(), e.mode, (e.uid, e.gid)),
                None => (
                    crate::sys::fs::read_file(&f.target)?,
                    crate::sys::fs::mode(&f.target).unwrap_or(0o600),
                    crate::sys::fs::owner(&f.target).unzip(),
                ),
            };
            crate::sys::fs::write_synced(&file, &bytes, 0o600)?;
            entries.push(BackupEntry {
                target: f.target.clone(),
                file,
                mode,
                uid,
                gid,
                sha256: sha256_hex(&bytes),
                absent: false,
            });
        }
        let manifest =
            serde_json::to_vec_pretty(&entries).map_err(crate::rollout::Error::Serialize)?;
        crate::sys::fs::write_synced(&dir.join("manifest.json"), &manifest, 0o600)?;
        crate::sys::fs::sync_dir(&dir)?;
        Ok(dir)
    }

    pub(super) fn backup_entries(&self) -> Result<Vec<BackupEntry>> {
        let j = Journal::load(&self.state_dir)?.ok_or(crate::rollout::Error::NoJournal)?;
        read_backup_manifest(&j.backup)
    }
}

/// The `manifest.json` of a backup directory.
pub(super) fn read_backup_manifest(backup: &Path) -> Result<Vec<BackupEntry>> {
    let p = backup.join("manifest.json");
    let bytes = crate::sys::fs::read_file(&p)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Input {
        path: p,
        expected: "a backup manifest".into(),
        found: e.to_string(),
    })
}
