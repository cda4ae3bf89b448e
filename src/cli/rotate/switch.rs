//! `certs rotate-ca switch`: on a node where the trust stage is installed, every leaf the old
//! CA signed (certificate files, kubeconfigs' embedded client certificates, the files
//! kubeconfigs reference) reissued from the new CA with subject, SANs, usages and keys kept,
//! and the signing CA files made the new CA (its certificate first, the old kept after it
//! while the file is a trust store; its key as the signing key), into one bundle. The leaves
//! are signed here with the new CA key, or given already signed (`--signed`) and spliced in.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::SwitchArgs;
use super::node::{survey, Survey};
use super::{absolute, mode_of, now_of, old_ca, print_lines, Line};
use crate::cli::args::ResultOutput;
use crate::cli::Outcome;
use crate::edit::bundle::{Change, Edited, NewFile};
use crate::error::{Error, Result};
use crate::issue::bundle::{Reissued, SanDiff};
use crate::issue::target::Reissuable as Target;
use crate::issue::{Issued, SigningKey};
use crate::pki::cert::CertInfo;
use crate::rotate::certs_in;
use crate::rotate::stage::Stage;

/// The new CA's key, read as `certs reissue --ca-key` reads one.
pub(crate) fn signing_key(path: &Path) -> Result<SigningKey> {
    let bytes = crate::sys::fs::read_file(path)?;
    let err = |found: String| Error::Input {
        path: path.to_path_buf(),
        expected: "a PEM private key (the new CA's)".into(),
        found,
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| err("binary data".into()))?;
    let blocks = pem::parse_many(text).map_err(|e| err(format!("unreadable PEM ({e})")))?;
    let block = blocks
        .iter()
        .find(|b| b.tag().ends_with("PRIVATE KEY"))
        .ok_or_else(|| err("no private key block".into()))?;
    let encrypted = block
        .headers()
        .get("Proc-Type")
        .is_some_and(|v| v.contains("ENCRYPTED"));
    SigningKey::from_pem_block(block.tag(), block.contents(), encrypted)
        .map_err(|e| err(e.to_string()))
}

/// The node's signing CA file for the old CA (the bundle's `ca`; gates verify against it), else
/// the first anchor holding it, else CA_CERT.
fn ca_file(s: &Survey, old: &CertInfo, ca_cert: &Path) -> PathBuf {
    s.signers
        .first()
        .map(|f| f.cert.clone())
        .or_else(|| {
            s.anchors
                .files
                .iter()
                .find(|f| crate::rotate::holds(&certs_in(&f.bytes), old))
                .map(|f| f.path.clone())
        })
        .unwrap_or_else(|| ca_cert.to_path_buf())
}

/// Every old leaf signed by the new CA here (its key on this node); one line per leaf that
/// cannot be.
fn sign_targets(
    targets: Vec<(String, Target)>,
    new: &CertInfo,
    key: &SigningKey,
    now: i64,
) -> (Vec<(Target, Issued)>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (at, t) in targets {
        match crate::rotate::switch::reissue(&at, &t.info, new, key, now) {
            Ok(issued) => out.push((t, issued)),
            Err(err) => problems.push(err.to_string()),
        }
    }
    (out, problems)
}

pub fn run(a: &SwitchArgs) -> Result<Outcome> {
    run_to(a, &mut std::io::stdout().lock())
}

/// The switch stage, its result written to `o`: the leaves signed here with `--new-ca-key`, or
/// spliced from `--signed` (signed on the CA host, [`super::signed`]).
fn run_to(a: &SwitchArgs, o: &mut dyn Write) -> Result<Outcome> {
    let now = now_of(a.now.as_deref())?;
    let root = absolute(&a.root)?;
    let out = absolute(&a.out)?;
    let ca_cert = absolute(&a.ca_cert)?;
    // The key must pair with the new CA: refused before the node is read.
    let (new, key) = match &a.new_ca_key {
        Some(k) => (
            crate::issue::target::explicit_ca(&a.new_ca, k)?
                .info
                .clone(),
            Some((signing_key(k)?, crate::sys::fs::read_file(k)?)),
        ),
        None => (super::read_cas(&a.new_ca)?.remove(0), None),
    };
    let old = old_ca(&ca_cert, Some(&new))?;
    let s = survey(&root, &a.paths, now, &old, Some(&new))?;
    let (stage, why) = s.stage();
    let result = |changed: bool, bundle: Option<&Path>, lines: &[Line]| {
        json!({
            "schema": "certs.rotate-ca/v1",
            "stage": "switch",
            "changed": changed,
            "bundle": bundle,
            "node_stage": stage,
            "old_ca": {"certificate": ca_cert, "subject": old.subject, "serial": old.serial},
            "new_ca": {"certificate": a.new_ca, "subject": new.subject, "serial": new.serial},
            "files": lines.iter().map(Line::json).collect::<Vec<_>>(),
        })
    };
    match stage {
        Stage::Trust => {}
        Stage::Switch | Stage::Finished => {
            if a.output == ResultOutput::Json {
                writeln!(o, "{}", result(false, None, &[])).map_err(Error::Output)?;
            } else {
                writeln!(
                    o,
                    "unchanged: the node is already {} (every leaf from `{}`, the signing files start with it); nothing to do, no bundle written",
                    stage.as_str(),
                    new.subject
                )
                .map_err(Error::Output)?;
            }
            return Ok(Outcome::Clean);
        }
        Stage::Nothing | Stage::Mixed => {
            return Err(Error::Usage(format!(
                "expected the trust stage installed on this node before switch, found stage `{}` (certs rotate-ca status: {}); install the trust bundle with certs rollout apply first",
                stage.as_str(),
                why.join("; ")
            )))
        }
    }
    let (targets, mut problems) = super::signed::old_targets(&s);
    let (leaves, more) = match (&a.signed, &key) {
        (Some(signed), _) => super::signed::splice(targets, &absolute(signed)?, &new, now)?,
        (None, Some((k, _))) => sign_targets(targets, &new, k, now),
        (None, None) => {
            return Err(Error::Usage(
                "switch: expected --new-ca-key (this node signs its leaves) or --signed FILE (signed on the CA host), found neither".into(),
            ))
        }
    };
    problems.extend(more);
    let ca_path = ca_file(&s, &old, &ca_cert);
    let ca = ca_path.display().to_string();

    // The signing files: the new CA first, the new key.
    let mut edited: Vec<Edited> = Vec::new();
    let mut lines: Vec<Line> = Vec::new();
    for f in &s.signers {
        let Some((_, key_bytes)) = &key else {
            if certs_in(&f.bytes).first().is_none_or(|c| c.der != new.der) {
                problems.push(format!(
                    "`{}`: a signing file of the old CA (its key `{}` beside it) on this node: expected --new-ca-key to make it the new CA, found only --signed",
                    f.cert.display(),
                    f.key.display()
                ));
            }
            continue;
        };
        match crate::rotate::switch::signer_file(&f.cert, &f.bytes, &old, &new) {
            Ok(None) => {}
            Ok(Some(bytes)) => {
                let names = |v: &[CertInfo]| {
                    v.iter()
                        .map(|c| c.subject.clone())
                        .collect::<Vec<_>>()
                        .join(" + ")
                };
                edited.push(Edited {
                    target: f.cert.clone(),
                    kind: "certificate",
                    role: crate::pki::role::detect(&f.cert, &new),
                    components: vec![],
                    mode: mode_of(&f.cert, 0o644),
                    old: f.bytes.clone(),
                    changes: vec![Change {
                        at: "certificates".into(),
                        before: names(&certs_in(&f.bytes)),
                        after: names(&certs_in(&bytes)),
                    }],
                    new: bytes,
                });
                lines.push(Line {
                    target: f.cert.clone(),
                    kind: "signing-ca",
                    action: "new-ca-first",
                    why: vec![f.why.clone()],
                });
            }
            Err(e) => problems.push(e.to_string()),
        }
        let old_key = crate::sys::fs::read_opt(&f.key).unwrap_or_default();
        if &old_key != key_bytes && !edited.iter().any(|e| e.target == f.key) {
            // `ca-key`, not `private-key`: a rollout step checks every certificate it swaps
            // against a `private-key` it swaps (a leaf's new key), and a step swapping a leaf
            // beside the CA key would fail that check. This key pairs with the new CA, checked
            // above (`explicit_ca`), which the signing file starts with (read back).
            edited.push(Edited {
                target: f.key.clone(),
                kind: "ca-key",
                role: crate::pki::role::detect(&f.cert, &new),
                components: vec![],
                mode: 0o600,
                old: old_key,
                new: key_bytes.clone(),
                changes: vec![Change {
                    at: "private key".into(),
                    before: format!("the key of `{}`", old.subject),
                    after: format!("the key of `{}`", new.subject),
                }],
            });
            lines.push(Line {
                target: f.key.clone(),
                kind: "signing-key",
                action: "new-ca-key",
                why: vec![format!("pairs with {}", f.cert.display())],
            });
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused {
            what: "switch cannot reissue every leaf of the old CA and make the signing files the new CA; nothing was written".into(),
            problems,
        });
    }
    let items: Vec<Reissued> = leaves
        .iter()
        .map(|(t, issued)| Reissued {
            target: t,
            ca: ca.clone(),
            issued,
            diff: SanDiff::unchanged(
                &crate::spec::san::from_cert(&t.info.sans).unwrap_or_default(),
            ),
            key_file: None,
        })
        .collect();
    let mut files: Vec<NewFile> = Vec::new();
    if !items.is_empty() {
        let made = crate::issue::bundle::files(&items).map_err(Error::from)?;
        let entries = made
            .iter()
            .map(|f| {
                serde_json::to_value(f)
                    .map(|v| (v, f.contents.clone()))
                    .map_err(|e| Error::Usage(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        files = crate::edit::bundle::placed(entries, &[]).map_err(Error::from)?;
    }
    let taken: Vec<PathBuf> = files.iter().map(|f| f.bundle_path.clone()).collect();
    files.extend(crate::edit::bundle::edited_files(&edited, &taken));
    let mut leaf_lines: Vec<Line> = leaves
        .iter()
        .map(|(t, issued)| Line {
            target: t.path.clone(),
            kind: if t.user.is_some() {
                "kubeconfig"
            } else {
                "leaf"
            },
            action: "reissued",
            why: [format!(
                "{}{}: serial {} -> {}",
                t.user
                    .as_deref()
                    .map_or(String::new(), |u| format!("users[{u}] ")),
                t.info.subject,
                t.info.serial,
                issued.info.serial
            )]
            .into_iter()
            .chain(issued.warnings.iter().cloned())
            .collect(),
        })
        .collect();
    leaf_lines.extend(lines);
    let lines = leaf_lines;
    super::bundle::write(&super::bundle::StageBundle {
        stage: "switch",
        from: Stage::Trust,
        to: Stage::Switch,
        root: &root,
        out: &out,
        now,
        ca: (ca, new.subject.clone()),
        old: &old,
        new: &new,
        new_files: (
            json!(absolute(&a.new_ca)?),
            json!(a.new_ca_key.as_deref().map(absolute).transpose()?),
        ),
        files: &files,
    })?;
    if a.output == ResultOutput::Json {
        writeln!(o, "{}", result(true, Some(&out), &lines)).map_err(Error::Output)?;
        return Ok(Outcome::Clean);
    }
    writeln!(
        o,
        "switch: {} leaf(s) of `{}` reissued from `{}` (subject, SANs, usages and keys kept); the signing files start with the new CA",
        leaves.len(),
        old.subject,
        new.subject
    )
    .map_err(Error::Output)?;
    print_lines(o, &lines, &|action| match action {
        "reissued" => "reissued from the new CA",
        "new-ca-first" => "new CA first, old kept after it",
        _ => "the new CA's key",
    })?;
    writeln!(
        o,
        "{}",
        super::bundle::install_line(&out, &root, files.len())
    )
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}
