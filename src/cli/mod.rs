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

use crate::error::exit;

/// Entry point of the `certs` binary.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // --help and --version are successes; everything else is a usage error.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match args.command {
        Command::Inspect(a) => config::inspect(a).and_then(|c| inspect::run(&c)),
        Command::Spec(a) => spec::run(&a),
        Command::Reissue(a) => config::reissue(a).and_then(|c| reissue::run(&c)),
        Command::Issue(a) => issue::run(&a),
        Command::Renew(a) => config::renew(a).and_then(|c| renew::run(&c)),
        Command::Rollout(cmd) => rollout::run(&cmd),
        Command::Preflight(a) => preflight::run(&a),
        Command::Completions(a) => docs::completions(&a),
        Command::Man(a) => docs::man(&a),
        Command::Kubeconfig(cmd) => kubeconfig::run(&cmd),
        Command::Change(a) => change::run(&a),
        Command::Cluster(a) => cluster::run(&a),
        Command::RotateCa(cmd) => rotate::run(&cmd),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // `certs inspect | head`, `certs spec X | head -1`: the reader went away, which is not
        // our failure; nothing is printed. Output goes through writers whose errors come back
        // here, never println! (which panics on a closed pipe).
        Err(crate::error::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(exit::OK)
        }
        Err(crate::error::Error::Refused { what, problems }) => {
            let _ = std::io::stdout().flush();
            for p in &problems {
                eprintln!("certs: error: {p}");
            }
            eprintln!("certs: {what}");
            ExitCode::from(exit::USAGE)
        }
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("certs: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
