//! The journal: the plan and the state of every step, on disk, rewritten atomically before and
//! after each mutating action. After a crash it says where the rollout stopped.

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
        if !p.exists() {
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

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| Error::Usage(e.to_string()))?;
        crate::sys::fs::write_atomic(&path(state_dir), &bytes, 0o600)
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
