//! `certs completions SHELL` and `certs man [COMMAND]...`: generated from the clap definition
//! itself, so they name exactly the subcommands and flags this binary has.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::roff::{roman, Roff};

use super::args::{Args, CompletionsArgs, ManArgs};
use super::outcome::Outcome;
use crate::error::{Error, Result};

pub fn completions(a: &CompletionsArgs) -> Result<Outcome> {
    // Generated into memory first: clap_complete panics on a failed write, and a closed pipe
    // must end quietly (main maps a broken pipe to exit 0).
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut Args::command(), "certs", &mut script);
    print(&script)
}

pub fn man(a: &ManArgs) -> Result<Outcome> {
    let page = page(&a.command)?;
    print(&page)
}

/// The roff page of `certs` or of one of its subcommands (`["rollout", "apply"]`):
/// certs-rollout-apply(1), with its Examples as an EXAMPLES section.
pub fn page(path: &[String]) -> Result<Vec<u8>> {
    let mut cmd = Args::command();
    cmd.build();
    let mut at = &cmd;
    for name in path {
        at = at.find_subcommand(name).ok_or_else(|| {
            let known: Vec<&str> = at.get_subcommands().map(|c| c.get_name()).collect();
            Error::Usage(format!(
                "expected a subcommand of `{}` ({}), found `{name}`",
                at.get_bin_name().unwrap_or("certs"),
                known.join(", ")
            ))
        })?;
    }
    // Subcommands carry no version of their own; their pages name the binary's.
    let version = env!("CARGO_PKG_VERSION");
    let man = clap_mangen::Man::new(at.clone().version(version)).source(format!("certs {version}"));
    let mut out = Vec::new();
    let write = |out: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(out)?;
        man.render_name_section(out)?;
        man.render_synopsis_section(out)?;
        man.render_description_section(out)?;
        if at.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(out)?;
        }
        if at.has_subcommands() {
            man.render_subcommands_section(out)?;
        }
        if let Some(after) = at.get_after_help() {
            examples(&after.to_string()).to_writer(out)?;
        }
        man.render_version_section(out)
    };
    write(&mut out).map_err(Error::Output)?;
    // Each section comes with roff's apostrophe preamble; once, at the top, is enough.
    let text = String::from_utf8_lossy(&out).into_owned();
    let body = text.replace(APOSTROPHES, "");
    Ok(format!("{APOSTROPHES}{body}").into_bytes())
}

/// What roff puts in front of every rendered section (`'` typeset as an apostrophe).
const APOSTROPHES: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// `--help`'s Examples as a man page's EXAMPLES section, lines kept as they are (`.nf`); the
/// notes after the examples as a paragraph of their own.
fn examples(after_help: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["EXAMPLES"]);
    roff.control("nf", []);
    let body = after_help
        .strip_prefix("Examples:\n")
        .or_else(|| after_help.strip_prefix("Example:\n"))
        .unwrap_or(after_help);
    let (examples, notes) = body.split_once("\n\n").unwrap_or((body, ""));
    for line in examples.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
    for paragraph in notes.split("\n\n").filter(|p| !p.trim().is_empty()) {
        roff.control("PP", []);
        roff.text([roman(
            paragraph.split_whitespace().collect::<Vec<_>>().join(" "),
        )]);
    }
    roff
}

fn print(bytes: &[u8]) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}
