//! `certs rotate-ca finish`: on a switched node, the old CA taken out of every trust anchor
//! (CA files, signing files, kubeconfigs), into one bundle. Refused, one line per leaf, while
//! any leaf of the node is still signed by the old CA: that leaf would stop being trusted.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::FinishArgs;
use super::node::survey;
use super::{absolute, kubeconfig_edit, mode_of, old_ca, print_lines, read_cas, Line};
use crate::cli::args::ResultOutput;
use crate::cli::Outcome;
use crate::edit::bundle::{Change, Edited};
use crate::error::{Error, Result};
use crate::rotate::stage::Stage;
use crate::rotate::{certs_in, finish as rf};

pub fn run(a: &FinishArgs) -> Result<Outcome> {
    let now = super::now_of(None)?;
    let root = absolute(&a.root)?;
    let out = absolute(&a.out)?;
    let ca_cert = absolute(&a.ca_cert)?;
    let new = read_cas(&a.new_ca)?.remove(0);
    let old = old_ca(&ca_cert, Some(&new))?;
    let s = survey(&root, &a.paths, now, &old, Some(&new))?;
    let (stage, why) = s.stage();
    let mut o = std::io::stdout().lock();
    let result = |changed: bool, bundle: Option<&Path>, lines: &[Line]| {
        json!({
            "schema": "certs.rotate-ca/v1",
            "stage": "finish",
            "changed": changed,
            "bundle": bundle,
            "node_stage": stage,
            "old_ca": {"certificate": ca_cert, "subject": old.subject, "serial": old.serial},
            "new_ca": {"certificate": a.new_ca, "subject": new.subject, "serial": new.serial},
            "files": lines.iter().map(Line::json).collect::<Vec<_>>(),
        })
    };
    // First: no leaf of the old CA may be left on the node.
    let old_leaves: Vec<String> = s
        .old_leaves()
        .map(|l| {
            let c = &s.inventory.certificates[l.entry].info;
            format!(
                "`{}`: still signed by the old CA `{}` ({}, serial {})",
                l.at, old.subject, c.subject, c.serial
            )
        })
        .collect();
    if !old_leaves.is_empty() {
        return Err(Error::Refused {
            what: format!(
                "refusing to finish: {} leaf(s) on this node are still signed by the old CA and would no longer be trusted (run and install switch first); nothing was written",
                old_leaves.len()
            ),
            problems: old_leaves,
        });
    }
    match stage {
        Stage::Switch => {}
        Stage::Finished => {
            if a.output == ResultOutput::Json {
                writeln!(o, "{}", result(false, None, &[])).map_err(Error::Output)?;
            } else {
                writeln!(
                    o,
                    "unchanged: the node is already finished (no anchor trusts `{}`); nothing to do, no bundle written",
                    old.subject
                )
                .map_err(Error::Output)?;
            }
            return Ok(Outcome::Clean);
        }
        _ => {
            return Err(Error::Usage(format!(
                "expected the switch stage installed on this node before finish, found stage `{}` (certs rotate-ca status: {}); install the switch bundle with certs rollout apply first",
                stage.as_str(),
                why.join("; ")
            )))
        }
    }

    let mut edited: Vec<Edited> = Vec::new();
    let mut lines: Vec<Line> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut files: Vec<(PathBuf, Vec<u8>, Vec<String>)> = s
        .anchors
        .files
        .iter()
        .map(|f| (f.path.clone(), f.bytes.clone(), f.why.clone()))
        .collect();
    for f in &s.signers {
        if !files.iter().any(|(p, _, _)| p == &f.cert) {
            files.push((f.cert.clone(), f.bytes.clone(), vec![f.why.clone()]));
        }
    }
    let names = |b: &[u8]| {
        certs_in(b)
            .iter()
            .map(|c| c.subject.clone())
            .collect::<Vec<_>>()
            .join(" + ")
    };
    for (path, bytes, why) in &files {
        match rf::trust_file(path, bytes, &old, &new) {
            Ok(None) => {}
            Ok(Some(kept)) => {
                edited.push(Edited {
                    target: path.clone(),
                    kind: "certificate",
                    role: crate::pki::role::detect(path, &new),
                    components: vec![],
                    mode: mode_of(path, 0o644),
                    old: bytes.clone(),
                    changes: vec![Change {
                        at: "certificates".into(),
                        before: names(bytes),
                        after: names(&kept),
                    }],
                    new: kept,
                });
                lines.push(Line {
                    target: path.clone(),
                    kind: "trust-file",
                    action: "removed",
                    why: why.clone(),
                });
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for k in &s.anchors.kubeconfigs {
        match rf::kubeconfig(&k.path, &k.text, &old, &new) {
            Ok(v) => {
                if let Some(text) = v.text {
                    let (line, edit) =
                        kubeconfig_edit(&k.path, &k.text, text, v.changes, "removed", &root);
                    lines.push(line);
                    edited.push(edit);
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused {
            what: "finish cannot take the old CA out of every anchor; nothing was written".into(),
            problems,
        });
    }
    let ca = s
        .signers
        .first()
        .map(|f| f.cert.display().to_string())
        .unwrap_or_else(|| {
            absolute(&a.new_ca)
                .unwrap_or_default()
                .display()
                .to_string()
        });
    let files = crate::edit::bundle::edited_files(&edited, &[]);
    super::bundle::write(&super::bundle::StageBundle {
        stage: "finish",
        from: Stage::Switch,
        to: Stage::Finished,
        root: &root,
        out: &out,
        now,
        ca: (ca, new.subject.clone()),
        old: &old,
        new: &new,
        new_files: (json!(absolute(&a.new_ca)?), json!(null)),
        files: &files,
    })?;
    if a.output == ResultOutput::Json {
        writeln!(o, "{}", result(true, Some(&out), &lines)).map_err(Error::Output)?;
        return Ok(Outcome::Clean);
    }
    writeln!(
        o,
        "finish: `{}` taken out of every trust anchor; `{}` alone is trusted",
        old.subject, new.subject
    )
    .map_err(Error::Output)?;
    print_lines(&mut o, &lines, &|_| "- old CA")?;
    writeln!(
        o,
        "{}",
        super::bundle::install_line(&out, &root, files.len())
    )
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}
