//! `certs preflight`: an adapter over [`crate::preflight::run`] — run the checks the resolved
//! config asks for, render them fitted to the terminal, exit 1 when one fails.

use std::io::Write;

use super::config::PreflightConfig;
use super::outcome::{problem_if, Outcome};
use super::render;
use crate::error::{Error, Result};

pub fn run(c: &PreflightConfig) -> Result<Outcome> {
    let report = crate::preflight::run(&c.check)?;
    let mut out = std::io::stdout().lock();
    let width = crate::sys::term::stdout_columns();
    render::preflight(&mut out, &report.checks, c.output, width)
        .and_then(|()| out.flush())
        .map_err(Error::Output)?;
    Ok(problem_if(report.failed()))
}
