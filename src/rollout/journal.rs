//! The journal: the plan and the state of every step, on disk, rewritten atomically before and
//! after each mutating action. After a crash it says where the rollout stopped.
//!
//! `journal.json` holds the latest rollout of a state directory; every earlier one is kept in
//! `journals/<its backup's name>.json` (copied there before a new rollout replaces it), so the
//! backup of the original files stays reachable by `rollback BACKUP`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    Pending,
    /// Files are being replaced: some may be new, some old.
    Swapping,
    Swapped,
    Restarting,
    Healthy,
    /// Its files were restored and it is back on the old certificate.
    RolledBack,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Running,
    /// A rollback was started and has not finished (killed midway): some files may be
    /// restored, others not. `rollback` (or `resume`) finishes it.
    RollingBack,
    Done,
    RolledBack,
    RollbackFailed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub schema: String,
    pub plan: Plan,
    /// Where the original files were copied before anything changed.
    pub backup: PathBuf,
    pub steps: Vec<StepState>,
    pub outcome: Outcome,
    pub log: Vec<Entry>,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("journal.json")
}

/// Where the earlier rollouts of a state directory are kept.
pub fn archive_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("journals")
}

impl Journal {
    pub fn new(plan: Plan, backup: PathBuf) -> Journal {
        let steps = vec![StepState::Pending; plan.steps.len()];
        Journal {
            schema: "certs.journal/v1".into(),
            plan,
            backup,
            steps,
            outcome: Outcome::Running,
            log: vec![],
        }
    }

    pub fn load(state_dir: &Path) -> Result<Option<Journal>> {
        let p = path(state_dir);
        if !crate::sys::fs::exists(&p) {
            return Ok(None);
        }
        let bytes = crate::sys::fs::read_file(&p)?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Input {
                path: p,
                expected: "a certs journal".into(),
                found: e.to_string(),
            })
    }

    /// Every earlier rollout kept in `journals/`, oldest first (by name: backups are named by
    /// time).
    pub fn archived(state_dir: &Path) -> Result<Vec<Journal>> {
        let dir = archive_dir(state_dir);
        let mut names = crate::sys::fs::list_dir(&dir).unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "json"));
        names.sort();
        names
            .iter()
            .map(|p| {
                let bytes = crate::sys::fs::read_file(p)?;
                serde_json::from_slice(&bytes).map_err(|e| Error::Input {
                    path: p.clone(),
                    expected: "a certs journal".into(),
                    found: e.to_string(),
                })
            })
            .collect()
    }

    /// Keeps this rollout in `journals/` (before a new one replaces `journal.json`).
    pub fn archive(&self, state_dir: &Path) -> Result<()> {
        let dir = archive_dir(state_dir);
        crate::sys::fs::create_private_dirs(&dir)?;
        let name = self
            .backup
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "rollout".into());
        let bytes = serde_json::to_vec_pretty(self).map_err(super::Error::Serialize)?;
        crate::sys::fs::write_atomic(&dir.join(format!("{name}.json")), &bytes, 0o600)
            .map_err(crate::error::Error::from)
    }

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(super::Error::Serialize)?;
        crate::sys::fs::write_atomic(&path(state_dir), &bytes, 0o600)
            .map_err(crate::error::Error::from)
    }

    /// Why `component` failed, as noted when it did (the last such note).
    pub fn failure(&self, component: &str) -> Option<&str> {
        let prefix = super::exec::failed_prefix(component);
        self.log
            .iter()
            .rev()
            .find_map(|e| e.message.strip_prefix(&prefix))
    }

    pub fn note(&mut self, now: i64, message: String) {
        self.log.push(Entry {
            time: crate::duration::rfc3339(now),
            message,
        });
    }
}
