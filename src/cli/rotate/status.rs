//! `certs rotate-ca status`: which stage the node is in, from what its files hold, and why.

use std::io::Write;

use serde_json::{json, Value};

use super::args::StatusArgs;
use super::node::{anchors, successor, survey};
use super::{absolute, old_ca, read_cas};
use crate::cli::args::ResultOutput;
use crate::cli::Outcome;
use crate::error::{Error, Result};
use crate::rotate::stage::{Anchor, Stage};

pub fn run(a: &StatusArgs) -> Result<Outcome> {
    let now = super::now_of(None)?;
    let root = absolute(&a.root)?;
    let ca_cert = absolute(&a.ca_cert)?;
    let given = match &a.new_ca {
        Some(p) => Some(read_cas(p)?.remove(0)),
        None => None,
    };
    let old = old_ca(&ca_cert, given.as_ref())?;
    let new = match given {
        Some(n) => Some(n),
        None => successor(&anchors(&root, &a.paths, now)?, &old)?.map(|(c, _)| c),
    };
    let s = survey(&root, &a.paths, now, &old, new.as_ref())?;
    let facts = &s.facts;
    let (stage, why) = s.stage();
    let mut o = std::io::stdout().lock();
    if a.output == ResultOutput::Json {
        let v: Value = json!({
            "schema": "certs.rotate-ca-status/v1",
            "stage": stage,
            "reasons": why,
            "next": stage.next(),
            "old_ca": {"subject": old.subject, "serial": old.serial},
            "new_ca": new.as_ref().map(|n| json!({"subject": n.subject, "serial": n.serial})),
            "facts": facts,
        });
        writeln!(o, "{v}").map_err(Error::Output)?;
    } else {
        writeln!(o, "stage: {}", stage.as_str()).map_err(Error::Output)?;
        writeln!(o, "old CA: {} ({})", old.subject, old.serial).map_err(Error::Output)?;
        match &new {
            Some(n) => writeln!(o, "new CA: {} ({})", n.subject, n.serial),
            None => writeln!(o, "new CA: none trusted on this node"),
        }
        .map_err(Error::Output)?;
        let count = |f: &dyn Fn(&Anchor) -> bool| facts.anchors.iter().filter(|a| f(a)).count();
        writeln!(
            o,
            "anchors: {} (old and new {}, old only {}, new only {})",
            facts.anchors.len(),
            count(&|a| a.old && a.new),
            count(&|a| a.old && !a.new),
            count(&|a| !a.old && a.new)
        )
        .map_err(Error::Output)?;
        writeln!(
            o,
            "leaves: {} from the old CA, {} from the new",
            facts.old_leaves.len(),
            facts.new_leaves.len()
        )
        .map_err(Error::Output)?;
        for w in &why {
            writeln!(o, "  {w}").map_err(Error::Output)?;
        }
        writeln!(o, "next: {}", stage.next()).map_err(Error::Output)?;
    }
    Ok(if stage == Stage::Mixed {
        Outcome::Problem
    } else {
        Outcome::Clean
    })
}
