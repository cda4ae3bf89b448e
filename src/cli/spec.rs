//! `certs spec`: an adapter over [`crate::spec::reconstruct`] and the SAN edit.

use std::io::Write;

use super::config::{SpecConfig, SpecSource};
use super::outcome::Outcome;
use crate::error::{Error, Result};
use crate::spec::{self, san, CsrSpec};

pub fn run(c: &SpecConfig) -> Result<Outcome> {
    let edit = &c.edit;
    let value: serde_json::Value = match &c.source {
        SpecSource::Template(name) => {
            let json = spec::template::get(name)?;
            if name == "ca-config" {
                if !edit.is_empty() {
                    return Err(Error::Usage(
                        "expected no SAN edit for ca-config, which has no hosts".into(),
                    ));
                }
                serde_json::from_str(json).map_err(|e| Error::Usage(e.to_string()))?
            } else {
                let spec: CsrSpec =
                    serde_json::from_str(json).map_err(|e| Error::Usage(e.to_string()))?;
                let current = spec.sans()?;
                let outcome = san::apply(&current, edit, false)?;
                report_noops(&outcome);
                serde_json::to_value(spec.with_sans(&outcome))
                    .map_err(|e| Error::Usage(e.to_string()))?
            }
        }
        SpecSource::Cert(path) => {
            let targets = crate::issue::target::load(path)?;
            let target = &targets[0];
            let r = spec::reconstruct(&target.info).map_err(|found| Error::Input {
                path: path.clone(),
                expected: "a certificate a cfssl spec can describe".into(),
                found: found.to_string(),
            })?;
            for note in &r.notes {
                eprintln!("certs: note: {note}");
            }
            let current = r.spec.sans()?;
            let outcome = san::apply(&current, edit, target.info.serves_tls())?;
            report_noops(&outcome);
            serde_json::to_value(r.spec.with_sans(&outcome))
                .map_err(|e| Error::Usage(e.to_string()))?
        }
    };
    let text = serde_json::to_string_pretty(&value).map_err(|e| Error::Usage(e.to_string()))?;
    // Not println!: it panics when the reader has gone (`certs spec X | head -1`); a write
    // error is returned, and main exits quietly on a broken pipe.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}

pub fn report_noops(outcome: &san::EditOutcome) {
    for s in &outcome.already_present {
        eprintln!("certs: note: {s} is already present; nothing to add");
    }
}
