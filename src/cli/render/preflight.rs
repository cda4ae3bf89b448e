//! Rendering preflight's checks: one line per check (`FAIL  check-id   message`, the message
//! and its fix continuing under themselves), then a count; or one JSON document
//! (`certs.preflight/v1`).

use std::io::{self, Write};

use super::table::hanging;
use crate::cli::args::PlanOutput;
use crate::preflight::{Check, Status};

/// `checks` as `output` says, text fitted to `width` columns (none: one line each).
pub fn preflight(
    out: &mut dyn Write,
    checks: &[Check],
    output: PlanOutput,
    width: Option<usize>,
) -> io::Result<()> {
    match output {
        PlanOutput::Json => {
            let v = serde_json::json!({ "schema": "certs.preflight/v1", "checks": checks });
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)
        }
        PlanOutput::Text => {
            // Messages and fixes continue under themselves, at column 33, or at 6 when that
            // leaves less than 40 columns.
            let indent = match width {
                Some(w) if w < 33 + 40 => 6,
                _ => 33,
            };
            for c in checks {
                let status = match c.status {
                    Status::Pass => "pass",
                    Status::Warn => "WARN",
                    Status::Fail => "FAIL",
                };
                let head = format!("{status:<5} {:<26} ", c.id);
                let mut lines = hanging(&head, &c.message, indent, width);
                if let Some(fix) = &c.fix {
                    let head = format!("{:indent$}fix: ", "");
                    lines.extend(hanging(&head, fix, indent + 5, width));
                }
                for line in lines {
                    writeln!(out, "{line}")?;
                }
            }
            let fails = checks.iter().filter(|c| c.status == Status::Fail).count();
            let warns = checks.iter().filter(|c| c.status == Status::Warn).count();
            writeln!(
                out,
                "{} checks: {fails} failed, {warns} warnings",
                checks.len()
            )
        }
    }
}
