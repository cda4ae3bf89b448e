//! `certs change`, resolved: the node's root made absolute, `$HOME` and the clock read once; the offline
//! preflight it runs on the node as the change would leave it is resolved from the same values.

use std::path::PathBuf;

use crate::cli::args::{ChangeArgs, ResultOutput};
use crate::error::{Error, Result};

use super::PreflightConfig;

/// `certs change`, resolved.
#[derive(Debug)]
pub struct ChangeConfig {
    pub args: ChangeArgs,
    /// `--root`, absolute.
    pub root: PathBuf,
    pub now: i64,
    /// `$HOME`, whose `.kube/config` is read too when no path is given.
    pub home: Option<String>,
}

pub fn change(a: ChangeArgs) -> Result<ChangeConfig> {
    let now = super::now(a.now.as_deref())?;
    let root = super::absolute(&a.root)?;
    Ok(ChangeConfig {
        args: a,
        root,
        now,
        home: std::env::var("HOME").ok(),
    })
}

impl ChangeConfig {
    /// `certs preflight` with the change's options, offline (a live probe could only show the
    /// node as it is before the change), as of the change's `now`.
    pub fn preflight(&self) -> Result<PreflightConfig> {
        let a = &self.args;
        let mut argv: Vec<String> = vec![
            "certs".into(),
            "preflight".into(),
            "--root".into(),
            self.root.display().to_string(),
            "--offline".into(),
            "--state-dir".into(),
            a.run.state.state_dir.display().to_string(),
        ];
        argv.extend(a.paths.iter().map(|p| p.display().to_string()));
        if let Some(v) = &a.spec.vip {
            argv.extend(["--vip".to_string(), v.clone()]);
        }
        for r in &a.spec.retire {
            argv.extend(["--retire".to_string(), r.clone()]);
        }
        if a.output == ResultOutput::Json {
            argv.extend(["-o".to_string(), "json".into()]);
        }
        let parsed = <crate::cli::args::Args as clap::Parser>::try_parse_from(&argv)
            .map_err(|e| Error::Usage(format!("the preflight options: {e}")))?;
        let crate::cli::args::Command::Preflight(p) = parsed.command else {
            return Err(Error::Usage("the preflight options did not parse".into()));
        };
        super::preflight_at(p, self.now)
    }
}
