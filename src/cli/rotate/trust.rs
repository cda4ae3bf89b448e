//! `certs rotate-ca trust`: the new CA (given, already trusted beside the old, or made now like
//! the old one) added after the old CA to every trust anchor holding it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::TrustArgs;
use super::node::{anchors, successor};
use super::{absolute, kubeconfig_edit, mode_of, now_of, old_ca, print_lines, Line};
use crate::cli::args::ResultOutput;
use crate::cli::Outcome;
use crate::edit::bundle::{Change, Edited};
use crate::error::{Error, Result};
use crate::pki::cert::CertInfo;
use crate::rotate::stage::Stage;
use crate::rotate::trust::{self as rt, FileVerdict};
use crate::rotate::{certs_in, holds, pem_of};

/// A new CA this run made: its certificate and key, to be written beside the bundle.
pub(crate) struct Made {
    pub dir: PathBuf,
    pub cert: (PathBuf, Vec<u8>),
    pub key: (PathBuf, Vec<u8>),
}

/// Makes the new CA like `old` into `<out>-new-ca/` (see [`make_ca_in`]).
fn make_ca(old: &CertInfo, ca_cert: &Path, out: &Path, now: i64) -> Result<(CertInfo, Made)> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rotate".into());
    make_ca_in(
        old,
        ca_cert,
        out.with_file_name(format!("{name}-new-ca")),
        now,
    )
}

/// Makes the new CA like `old` (file names and key format those of the old CA's files,
/// `ca_cert` and the key beside it), to be written into `dir`, which must not exist yet.
pub(crate) fn make_ca_in(
    old: &CertInfo,
    ca_cert: &Path,
    dir: PathBuf,
    now: i64,
) -> Result<(CertInfo, Made)> {
    let key = crate::issue::SigningKey::generate(&old.key).map_err(Error::from)?;
    let der = crate::rotate::ca::new_ca(old, &key, now).map_err(Error::from)?;
    let info = CertInfo::from_der(&der).map_err(Error::from)?;
    let old_key = crate::rollout::rebase::key_candidates(ca_cert)
        .into_iter()
        .take(2)
        .find(|p| crate::sys::fs::is_file(p));
    let format = old_key
        .as_ref()
        .and_then(|p| crate::sys::fs::read_opt(p))
        .and_then(|b| {
            crate::pki::decode::decode(Path::new(""), &b)
                .items
                .into_iter()
                .find_map(|i| match i {
                    crate::pki::decode::Item::Key { info, .. } if info.format.is_private() => {
                        Some(info.format)
                    }
                    _ => None,
                })
        })
        .filter(|f| !f.is_encrypted())
        .unwrap_or(crate::pki::key::KeyFormat::Pkcs8);
    let key_pem = key.to_pem(format).map_err(Error::from)?;
    let cert_name = ca_cert
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "ca.crt".into());
    let key_name = old_key
        .and_then(|p| p.file_name().map(|n| n.to_os_string()))
        .unwrap_or_else(|| "ca.key".into());
    if !crate::sys::fs::is_absent(&dir) {
        return Err(Error::Input {
            path: dir,
            expected: "no file there: the new CA is written to a new directory beside the bundle"
                .into(),
            found: "something already there (a new CA is never written over another)".into(),
        });
    }
    Ok((
        info.clone(),
        Made {
            cert: (dir.join(cert_name), pem_of(&info).into_bytes()),
            key: (dir.join(key_name), key_pem.into_bytes()),
            dir,
        },
    ))
}

pub(crate) fn write_made(m: &Made) -> Result<()> {
    crate::sys::fs::create_new_dir(&m.dir)?;
    crate::sys::fs::write_synced(&m.key.0, &m.key.1, 0o600)?;
    crate::sys::fs::write_synced(&m.cert.0, &m.cert.1, 0o644)?;
    crate::sys::fs::sync_dir(&m.dir).map_err(crate::error::Error::from)
}

/// The labels of a trust line.
fn label(action: &str) -> &'static str {
    if action == "added" {
        "+ new CA"
    } else {
        "already trusts both"
    }
}

pub fn run(a: &TrustArgs) -> Result<Outcome> {
    let now = now_of(a.now.as_deref())?;
    let root = absolute(&a.root)?;
    let out = absolute(&a.out)?;
    let ca_cert = absolute(&a.ca_cert)?;
    // The new CA given: with its key, checked to pair; alone (through `certs cluster`, whose
    // new CA key stays on the CA host), its certificate.
    let given = match (&a.new_ca, &a.new_ca_key) {
        (Some(c), Some(k)) => Some(crate::issue::target::explicit_ca(c, k)?.info.clone()),
        (Some(c), None) => Some(super::read_cas(c)?.remove(0)),
        _ => None,
    };
    let old = old_ca(&ca_cert, given.as_ref())?;
    let anchors = anchors(&root, &a.paths, now)?;
    let held_old = |bytes: &[u8]| holds(&certs_in(bytes), &old);
    let any_old = anchors.files.iter().any(|f| held_old(&f.bytes))
        || anchors.certs().iter().any(|(_, c)| c.der == old.der);
    if !any_old {
        return Err(Error::Usage(format!(
            "expected trust anchors on this node holding the CA `{}` ({}), found none (trust flags, kubeconfigs under {}): is it this node's CA?",
            old.subject,
            ca_cert.display(),
            root.display()
        )));
    }
    // The node's signing CA file for the old CA (kubeadm's `ca.crt` beside `ca.key`): the new
    // CA's files are named like it, and the bundle names it as its CA.
    let signing: PathBuf = anchors
        .files
        .iter()
        .find(|f| {
            certs_in(&f.bytes).first().is_some_and(|c| c.der == old.der)
                && crate::rollout::rebase::key_candidates(&f.path)
                    .into_iter()
                    .take(2)
                    .any(|p| crate::sys::fs::is_file(&p))
        })
        .map_or_else(|| ca_cert.clone(), |f| f.path.clone());
    // The new CA: given, already trusted beside the old one, or made now.
    let (new, source, made) = match &given {
        Some(ca) => (
            ca.clone(),
            json!({"certificate": a.new_ca, "key": a.new_ca_key, "made": false}),
            None,
        ),
        None => match successor(&anchors, &old)? {
            Some((c, at)) => (
                c,
                json!({"certificate": null, "key": null, "made": false, "found_in": at}),
                None,
            ),
            None => {
                let (c, m) = make_ca(&old, &signing, &out, now)?;
                (
                    c,
                    json!({"certificate": m.cert.0, "key": m.key.0, "made": true}),
                    Some(m),
                )
            }
        },
    };

    let mut edited: Vec<Edited> = Vec::new();
    let mut lines: Vec<Line> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for f in &anchors.files {
        match rt::trust_file(&f.bytes, &old, &new) {
            Ok(FileVerdict::NotAnchor) => {}
            Ok(FileVerdict::Already) => lines.push(Line {
                target: f.path.clone(),
                kind: "trust-file",
                action: "already",
                why: f.why.clone(),
            }),
            Ok(FileVerdict::Add(bytes)) => {
                let before = certs_in(&f.bytes);
                let role = crate::pki::role::detect(&f.path, &old);
                edited.push(Edited {
                    target: f.path.clone(),
                    kind: "certificate",
                    role,
                    components: vec![],
                    mode: mode_of(&f.path, 0o644),
                    old: f.bytes.clone(),
                    new: bytes,
                    changes: vec![Change {
                        at: "certificates".into(),
                        before: before
                            .iter()
                            .map(|c| c.subject.clone())
                            .collect::<Vec<_>>()
                            .join(" + "),
                        after: before
                            .iter()
                            .chain([&new])
                            .map(|c| c.subject.clone())
                            .collect::<Vec<_>>()
                            .join(" + "),
                    }],
                });
                lines.push(Line {
                    target: f.path.clone(),
                    kind: "trust-file",
                    action: "added",
                    why: f.why.clone(),
                });
            }
            Err(e) => problems.push(format!("`{}`: {e}", f.path.display())),
        }
    }
    for k in &anchors.kubeconfigs {
        match rt::kubeconfig(&k.text, &old, &new) {
            Ok(v) => {
                if let Some(text) = v.text {
                    let (line, edit) =
                        kubeconfig_edit(&k.path, &k.text, text, v.changes, "added", &root);
                    lines.push(line);
                    edited.push(edit);
                } else if !v.already.is_empty() {
                    lines.push(Line {
                        target: k.path.clone(),
                        kind: "kubeconfig",
                        action: "already",
                        why: v
                            .already
                            .iter()
                            .map(|c| format!("clusters[{c}].certificate-authority-data"))
                            .collect(),
                    });
                }
            }
            Err(e) => problems.push(format!("`{}`: {e}", k.path.display())),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused {
            what:
                "the trust stage cannot edit every anchor holding the old CA; nothing was written"
                    .into(),
            problems,
        });
    }
    let result = |changed: bool, bundle: Option<&Path>| {
        json!({
            "schema": "certs.rotate-ca/v1",
            "stage": "trust",
            "changed": changed,
            "bundle": bundle,
            "old_ca": {"certificate": ca_cert, "subject": old.subject, "serial": old.serial},
            "new_ca": {"subject": new.subject, "serial": new.serial, "source": source},
            "anchors": lines.iter().map(|l| json!({
                "target": l.target, "kind": l.kind, "action": l.action, "why": l.why,
            })).collect::<Vec<_>>(),
        })
    };
    let mut o = std::io::stdout().lock();
    if edited.is_empty() {
        // Only reached with the new CA given or found: a CA made now is in no anchor yet.
        if a.output == ResultOutput::Json {
            writeln!(o, "{}", result(false, None)).map_err(Error::Output)?;
        } else {
            writeln!(
                o,
                "already trusting both: every anchor holding `{}` also holds `{}`; nothing to change, no bundle written",
                old.subject, new.subject
            )
            .map_err(Error::Output)?;
            print_lines(&mut o, &lines, &label)?;
        }
        return Ok(Outcome::Clean);
    }
    let files = crate::edit::bundle::edited_files(&edited, &[]);
    if let Some(m) = &made {
        write_made(m)?;
    }
    super::bundle::write(&super::bundle::StageBundle {
        stage: "trust",
        from: Stage::Nothing,
        to: Stage::Trust,
        root: &root,
        out: &out,
        now,
        ca: (signing.display().to_string(), old.subject.clone()),
        old: &old,
        new: &new,
        new_files: (source["certificate"].clone(), source["key"].clone()),
        files: &files,
    })?;
    if a.output == ResultOutput::Json {
        writeln!(o, "{}", result(true, Some(&out))).map_err(Error::Output)?;
        return Ok(Outcome::Clean);
    }
    writeln!(
        o,
        "trust: every anchor holding `{}` gets `{}` after it",
        old.subject, new.subject
    )
    .map_err(Error::Output)?;
    print_lines(&mut o, &lines, &label)?;
    match &made {
        Some(m) => writeln!(
            o,
            "new CA: {} (key {}, mode 0600): keep the key on this host; give both as --new-ca/--new-ca-key to every later stage",
            m.cert.0.display(),
            m.key.0.display()
        ),
        None => writeln!(
            o,
            "new CA: {}",
            a.new_ca
                .as_ref()
                .map_or_else(|| source["found_in"].to_string(), |p| p.display().to_string())
        ),
    }
    .map_err(Error::Output)?;
    writeln!(
        o,
        "{}",
        super::bundle::install_line(&out, &root, files.len())
    )
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}
