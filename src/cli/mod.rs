//! Command-line interface: parse, resolve into a config, run one library operation per
//! subcommand, render, and map the outcome to an exit code.

mod args;
mod change;
mod cluster;
mod cluster_rotate;
mod config;
mod docs;
mod examples;
mod inspect;
mod inspect_json;
mod issue;
mod kubeconfig;
pub mod outcome;
mod preflight;
mod progress;
mod reissue;
mod render;
mod renew;
mod rollout;
mod rotate;
mod spec;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

pub use args::{Args, Command, Output};
pub use outcome::{exit_code, Outcome};

use crate::error::Error;

/// Entry point of the `certs` binary.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            // --help and --version are successes; everything else is a usage error, which clap
            // has just said.
            let outcome = if e.use_stderr() {
                Outcome::Refused
            } else {
                Outcome::Clean
            };
            return ExitCode::from(exit_code(Ok(outcome)));
        }
    };
    // Each command's arguments are resolved once (the clock read once), then run.
    let result = match args.command {
        Command::Inspect(a) => config::inspect(a).and_then(|c| inspect::run(&c)),
        Command::Spec(a) => config::spec(a).and_then(|c| spec::run(&c)),
        Command::Reissue(a) => config::reissue(a).and_then(|c| reissue::run(&c)),
        Command::Issue(a) => config::issue(a).and_then(|c| issue::run(&c)),
        Command::Renew(a) => config::renew(a).and_then(|c| renew::run(&c)),
        Command::Rollout(cmd) => config::rollout(cmd).and_then(|c| rollout::run(&c)),
        Command::Preflight(a) => config::preflight(a).and_then(|c| preflight::run(&c)),
        Command::Completions(a) => docs::completions(&a),
        Command::Man(a) => docs::man(&a),
        Command::Kubeconfig(cmd) => config::kubeconfig(cmd).and_then(|c| kubeconfig::run(&c)),
        Command::Change(a) => config::change(a).and_then(|c| change::run(&c)),
        Command::Cluster(a) => config::cluster(a).and_then(|c| cluster::run(&c)),
        Command::RotateCa(cmd) => rotate::run(&cmd),
    };
    if let Err(e) = &result {
        report(e);
    }
    ExitCode::from(exit_code(result.as_ref().copied()))
}

/// An error, said on stderr after whatever stdout already holds.
fn report(e: &Error) {
    match e {
        // `certs inspect | head`, `certs spec X | head -1`: the reader went away, which is not
        // our failure; nothing is printed (and exit_code says 0). Output goes through writers
        // whose errors come back here, never println! (which panics on a closed pipe).
        Error::Output(io) if io.kind() == std::io::ErrorKind::BrokenPipe => {}
        Error::Refused { what, problems } => {
            let _ = std::io::stdout().flush();
            for p in problems {
                eprintln!("certs: error: {p}");
            }
            eprintln!("certs: {what}");
        }
        e => {
            let _ = std::io::stdout().flush();
            eprintln!("certs: error: {e}");
        }
    }
}
