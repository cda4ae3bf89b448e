//! `certs preflight`, resolved into [`crate::preflight::Config`]: durations, the VIP and the URLs
//! parsed, `$HOME` and the clock read once. `certs change` resolves its own offline preflight
//! with its `now` ([`preflight_at`]).

use std::path::PathBuf;

use super::{now, parse_duration};
use crate::cli::args::{PlanOutput, PreflightArgs};
use crate::endpoint::Target;
use crate::error::{Error, Result};

/// `certs preflight`, resolved: what to check, and how to show it.
#[derive(Debug)]
pub struct PreflightConfig {
    pub check: crate::preflight::Config,
    pub output: PlanOutput,
}

pub fn preflight(a: PreflightArgs) -> Result<PreflightConfig> {
    let now = now(a.now.as_deref())?;
    preflight_at(a, now)
}

/// `a` resolved as of `now` (the caller's one clock read).
pub fn preflight_at(a: PreflightArgs, now: i64) -> Result<PreflightConfig> {
    let window = parse_duration(&a.window)?.as_secs() as i64;
    let timeout = parse_duration(&a.timeout)?;
    let vip = a.vip.as_deref().map(split_host_port).transpose()?;
    let endpoints = a
        .endpoint
        .into_iter()
        .map(|url| url.parse::<Target>().map(|t| (url, t)))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let etcd = a
        .etcd
        .iter()
        .map(|u| u.parse::<Target>())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(PreflightConfig {
        check: crate::preflight::Config {
            paths: a.paths,
            root: a.root,
            home: std::env::var_os("HOME").map(PathBuf::from),
            now,
            window,
            timeout,
            vip,
            offline: a.offline,
            retire: a.retire,
            keep: a.keep,
            endpoints,
            etcd,
            etcd_ca: a.etcd_ca,
            etcd_client: a.etcd_cert.zip(a.etcd_key),
            state_dir: a.state_dir,
        },
        output: a.output,
    })
}

/// `--vip ADDR[:PORT]`, the port 6443 unless given; an IPv6 address in brackets when it has one.
fn split_host_port(v: &str) -> Result<(String, u16)> {
    let bad = || Error::Usage(format!("--vip: expected ADDR or ADDR:PORT, found `{v}`"));
    if v.parse::<std::net::IpAddr>().is_ok() {
        return Ok((v.to_string(), 6443));
    }
    match v.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.trim_start_matches('[').trim_end_matches(']').to_string(),
            p.parse().map_err(|_| bad())?,
        )),
        None if !v.is_empty() => Ok((v.to_string(), 6443)),
        None => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vip_gets_port_6443_unless_it_names_one() {
        assert_eq!(
            split_host_port("10.0.0.1").unwrap(),
            ("10.0.0.1".into(), 6443)
        );
        assert_eq!(
            split_host_port("fd00::1").unwrap(),
            ("fd00::1".into(), 6443)
        );
        assert_eq!(
            split_host_port("[fd00::1]:8443").unwrap(),
            ("fd00::1".into(), 8443)
        );
        assert_eq!(
            split_host_port("lb.example:443").unwrap(),
            ("lb.example".into(), 443)
        );
        assert!(split_host_port("10.0.0.1:http").is_err());
        assert!(split_host_port("").is_err());
    }
}
