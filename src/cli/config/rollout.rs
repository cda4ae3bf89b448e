//! `certs rollout …`, resolved: for the commands that change the node (apply, resume,
//! rollback), the state directory made absolute and the gate and restart durations parsed,
//! once. A rollout reads no `now`: its executor is handed the clock (`crate::sys::clock::now`)
//! to stamp each event as it happens.

use std::path::PathBuf;
use std::time::Duration;

use super::{absolute, parse_duration};
use crate::cli::args::{
    RolloutApplyArgs, RolloutCommand, RolloutResumeArgs, RolloutRollbackArgs, RolloutRunArgs,
    RolloutStatusArgs,
};
use crate::error::Result;

/// `certs rollout …`, resolved.
#[derive(Debug)]
pub enum RolloutConfig {
    /// `plan`, and `apply --dry-run`: build the plan and print it (the run options are taken
    /// but not used).
    Plan(RolloutApplyArgs),
    Apply(RolloutApplyArgs, RunConfig),
    Status(RolloutStatusArgs),
    Resume(RolloutResumeArgs, RunConfig),
    Rollback(RolloutRollbackArgs, RunConfig),
}

/// How a rollout runs: where it records, how long its gates and restarts may take.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// `--state-dir`, absolute: the journal records paths in it (the backup), which must mean
    /// the same from any working directory.
    pub state_dir: PathBuf,
    pub health_timeout: Duration,
    pub health_interval: Duration,
    pub restart_timeout: Duration,
    pub park: Duration,
}

pub fn rollout(command: RolloutCommand) -> Result<RolloutConfig> {
    Ok(match command {
        RolloutCommand::Plan(a) => RolloutConfig::Plan(a),
        RolloutCommand::Apply(a) if a.dry_run => RolloutConfig::Plan(a),
        RolloutCommand::Apply(a) => {
            let run = run(&a.run)?;
            RolloutConfig::Apply(a, run)
        }
        RolloutCommand::Status(a) => RolloutConfig::Status(a),
        RolloutCommand::Resume(a) => {
            let run = run(&a.run)?;
            RolloutConfig::Resume(a, run)
        }
        RolloutCommand::Rollback(a) => {
            let run = run(&a.run)?;
            RolloutConfig::Rollback(a, run)
        }
    })
}

fn run(a: &RolloutRunArgs) -> Result<RunConfig> {
    Ok(RunConfig {
        state_dir: absolute(&a.state.state_dir)?,
        health_timeout: parse_duration(&a.health_timeout)?,
        health_interval: parse_duration(&a.health_interval)?,
        restart_timeout: parse_duration(&a.restart_timeout)?,
        park: parse_duration(&a.park)?,
    })
}
