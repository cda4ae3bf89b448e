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
    crate::duration::parse(text).map_err(Error::from)
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::args::{Args, Command};

    fn parse(argv: &[&str]) -> Command {
        Args::try_parse_from(argv).expect("parses").command
    }

    #[test]
    fn now_is_the_given_time_or_one_clock_read() {
        assert_eq!(now(Some("2034-06-01T00:00:00Z")).unwrap(), 2_032_732_800);
        let e = now(Some("June 1st")).unwrap_err().to_string();
        assert!(
            e.starts_with("--now: expected an RFC 3339 time") && e.contains("found `June 1st`"),
            "{e}"
        );
        assert!(!e.contains('\n'), "one line: {e}");
        let read = now(None).unwrap();
        assert!(read > 1_700_000_000, "the clock: {read}");
    }

    #[test]
    fn change_resolves_its_preflight_with_its_own_now() {
        let Command::Change(a) = parse(&["certs", "change", "--vip", "10.0.0.100"]) else {
            panic!("not change")
        };
        let c = change(a).unwrap();
        assert!(c.root.is_absolute());
        let p = c.preflight().unwrap();
        assert_eq!(p.check.now, c.now, "the clock is read once, by the change");
        assert!(p.check.offline);
        assert_eq!(p.check.vip, Some(("10.0.0.100".into(), 6443)));
        assert_eq!(p.check.root, c.root);
    }

    #[test]
    fn rollout_parses_run_options_only_for_the_commands_that_run() {
        let bad = ["--health-timeout", "soon"];
        // `plan` and `apply --dry-run` take the run options but never used them: as before,
        // a value they would not parse is not an error there.
        let plan = parse(&[&["certs", "rollout", "plan", "b"][..], &bad].concat());
        let Command::Rollout(cmd) = plan else {
            panic!("not rollout")
        };
        assert!(matches!(rollout(cmd).unwrap(), RolloutConfig::Plan(_)));
        let dry = parse(&[&["certs", "rollout", "apply", "b", "--dry-run"][..], &bad].concat());
        let Command::Rollout(cmd) = dry else {
            panic!("not rollout")
        };
        assert!(matches!(rollout(cmd).unwrap(), RolloutConfig::Plan(_)));
        let apply = parse(&[&["certs", "rollout", "apply", "b"][..], &bad].concat());
        let Command::Rollout(cmd) = apply else {
            panic!("not rollout")
        };
        assert!(rollout(cmd).is_err());
        let Command::Rollout(cmd) = parse(&["certs", "rollout", "resume", "--park", "1s"]) else {
            panic!("not rollout")
        };
        let RolloutConfig::Resume(_, run) = rollout(cmd).unwrap() else {
            panic!("not resume")
        };
        assert_eq!(run.park, Duration::from_secs(1));
        assert!(run.state_dir.is_absolute());
    }

    #[test]
    fn preflight_parses_its_urls_once() {
        let Command::Preflight(a) = parse(&[
            "certs",
            "preflight",
            "--endpoint",
            "https://127.0.0.1:6443",
            "--etcd",
            "https://127.0.0.1:2379",
            "--now",
            "2034-06-01T00:00:00Z",
        ]) else {
            panic!("not preflight")
        };
        let c = preflight(a).unwrap();
        assert_eq!(c.check.now, 2_032_732_800);
        assert_eq!(c.check.endpoints[0].0, "https://127.0.0.1:6443");
        assert_eq!(c.check.etcd.len(), 1);
        assert_eq!(c.check.window, 30 * 86400);
        let Command::Preflight(a) = parse(&["certs", "preflight", "--endpoint", "ftp://x"]) else {
            panic!("not preflight")
        };
        assert!(preflight(a).is_err());
    }
}
