//! `certs rollout`'s arguments (plan, apply, status, resume, rollback).

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Print the plan for a bundle and prove it can pass; takes every option `apply` takes
    #[command(after_help = crate::cli::examples::ROLLOUT_PLAN)]
    Plan(RolloutApplyArgs),
    /// Run the plan: back up, swap, restart one component at a time behind health gates
    #[command(after_help = crate::cli::examples::ROLLOUT_APPLY)]
    Apply(RolloutApplyArgs),
    /// Where the recorded rollout stands
    ///
    /// Exit codes: 0 done, or no rollout recorded; 1 interrupted (run `resume` to finish it or
    /// `rollback` to undo it); 3 failed and rolled back (healthy on the old certificates); 4
    /// failed and the rollback failed too (restore by hand from the backup it names).
    #[command(after_help = crate::cli::examples::ROLLOUT_STATUS)]
    Status(RolloutStatusArgs),
    /// Continue an interrupted rollout
    #[command(after_help = crate::cli::examples::ROLLOUT_RESUME)]
    Resume(RolloutResumeArgs),
    /// Restore the files of the recorded rollout and restart what used them
    #[command(after_help = crate::cli::examples::ROLLOUT_ROLLBACK)]
    Rollback(RolloutRollbackArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutPlanArgs {
    /// A bundle directory written by `certs reissue`
    pub bundle: PathBuf,

    /// Restart methods and gates for what the node does not say: kubeadm, kubespray, binary
    /// (kubeasz), or a profile file (JSON) [default: from the node, else from the targets]
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,

    /// The node's `/`: where its manifests, units and files are read, and profile paths resolve
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Restart a component with a command instead: NAME='CMD'; repeatable
    #[arg(long, value_name = "NAME=CMD")]
    pub restart_cmd: Vec<String>,

    /// Also accept targets under DIR, a PKI directory the node's configuration does not name
    /// (targets must otherwise lie in the standard PKI and config locations, or be read by a
    /// component of the node or of the profile); repeatable
    #[arg(long, value_name = "DIR")]
    pub allow_dir: Vec<PathBuf>,

    /// Probe a component at this endpoint instead of the one read from the node:
    /// NAME=https://host:port[/path] (or http:// on loopback); repeatable
    #[arg(long, value_name = "NAME=URL")]
    pub health: Vec<String>,

    /// Verify a component's gate against this CA file [default: the CA that signed the file it
    /// serves, as bundle.json records it]; repeatable
    #[arg(long, value_name = "NAME=FILE")]
    pub health_ca: Vec<String>,

    /// Client certificate a component's gate presents [default: read from the node]; repeatable
    #[arg(long, value_name = "NAME=FILE", requires = "health_key")]
    pub health_cert: Vec<String>,

    /// Key of that client certificate; repeatable
    #[arg(long, value_name = "NAME=FILE", requires = "health_cert")]
    pub health_key: Vec<String>,

    /// Restart this component even if none of its files changed (a kubeconfig it reads did);
    /// repeatable
    #[arg(long, value_name = "NAME")]
    pub restart: Vec<String>,

    /// Leave out the etcd membership steps of a retirement (bundle.json `etcd_membership`):
    /// no snapshot, leader move or member removal
    #[arg(long)]
    pub no_etcd_membership: bool,

    /// Install onto a node whose target files differ from those the bundle was made from (a
    /// rebuilt machine): each changed target must be a certificate whose new certificate pairs
    /// with the key on this node; its current file becomes the one backed up and restored
    #[arg(long)]
    pub rebase: bool,

    /// The plan as lines or JSON; with apply, progress as lines or one JSON event per line
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    /// readable lines
    Text,
    /// the plan as JSON; with apply, one JSON event per line
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutStateArgs {
    /// Where the journal, lock and backups live
    #[arg(long, value_name = "DIR", default_value = "/var/lib/certs")]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutStatusArgs {
    #[command(flatten)]
    pub state: RolloutStateArgs,

    /// Lines, or one JSON document (certs.rollout-status/v1)
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutResumeArgs {
    #[command(flatten)]
    pub run: RolloutRunArgs,

    /// Progress as lines, or one JSON event per line
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutRunArgs {
    #[command(flatten)]
    pub state: RolloutStateArgs,

    /// How long a health gate may take
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    pub health_timeout: String,

    /// Pause between health probes
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub health_interval: String,

    /// How long a restart command may take
    #[arg(long, value_name = "DURATION", default_value = "120s")]
    pub restart_timeout: String,

    /// How long a static pod manifest stays parked (the kubelet checks every 20 s)
    #[arg(long, value_name = "DURATION", default_value = "25s")]
    pub park: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutApplyArgs {
    #[command(flatten)]
    pub plan: RolloutPlanArgs,

    #[command(flatten)]
    pub run: RolloutRunArgs,

    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RolloutRollbackArgs {
    /// The backup directory of the recorded rollout [default: the journal's]
    pub backup: Option<PathBuf>,

    #[command(flatten)]
    pub run: RolloutRunArgs,

    /// Progress as lines, or one JSON event per line
    #[arg(short, long, value_enum, default_value_t = PlanOutput::Text)]
    pub output: PlanOutput,
}
