//! Second stage of argument handling: validate raw values, resolve paths, read the clock and the
//! environment once. One module per subcommand builds its resolved config from the clap
//! arguments; the run functions in `cli/` take only that. A command's one clock read is [`now`].

mod change;
mod cluster;
mod inspect;
mod issue;
mod kubeconfig;
mod preflight;
mod reissue;
mod renew;
mod rollout;
mod spec;

use std::time::Duration;

use crate::error::{Error, Result};

pub use change::{change, ChangeConfig};
pub(in crate::cli) use cluster::check_change_options;
pub use cluster::{cluster, ClusterConfig, ClusterReissue};
pub use inspect::{inspect, InspectConfig};
pub use issue::{issue, IssueConfig};
pub use kubeconfig::{kubeconfig, KubeconfigConfig};
pub use preflight::{preflight, preflight_at, PreflightConfig};
pub use reissue::{reissue, ReissueConfig};
pub use renew::{renew, RenewConfig};
pub use rollout::{rollout, RolloutConfig, RunConfig};
pub use spec::{spec, SpecConfig, SpecSource};

/// `--now TIME` when given, else the clock: the one clock read of a command.
pub fn now(given: Option<&str>) -> Result<i64> {
    match given {
        Some(t) => parse_time(t),
        None => Ok(crate::sys::clock::now()),
    }
}

pub fn parse_duration(text: &str) -> Result<Duration> {
    crate::duration::parse(text).map_err(Error::Usage)
}

pub fn parse_time(text: &str) -> Result<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            Error::Usage(format!(
                "--now: expected an RFC 3339 time such as 2030-01-01T00:00:00Z, found `{text}` ({e})"
            ))
        })
}

/// `path` made absolute against the working directory.
pub(super) fn absolute(path: &std::path::Path) -> Result<std::path::PathBuf> {
    std::path::absolute(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub(in crate::cli) fn parse_key_algo(text: &str) -> Result<crate::pki::key::KeyAlgo> {
    use crate::pki::key::KeyAlgo;
    let bad = || {
        Error::Usage(format!("--key-algo: expected rsa:2048, rsa:4096, ecdsa:256, ecdsa:384 or ed25519, found `{text}`"))
    };
    match text.split_once(':') {
        None if text == "ed25519" => Ok(KeyAlgo::ed25519()),
        Some(("rsa", n)) => n.parse().map(KeyAlgo::rsa).map_err(|_| bad()),
        Some(("ecdsa", n)) => n.parse().map(KeyAlgo::ecdsa).map_err(|_| bad()),
        _ => Err(bad()),
    }
}
