//! `certs kubeconfig set-server | set-ca | renew`: single-file kubeconfig changes into a bundle
//! `certs rollout` installs (a new one with `--out`, or an existing one with `--into`).
//! The edits are [`crate::edit::kubeconfig`]'s, the bundle entries [`crate::edit::bundle`]'s,
//! renewal is `certs renew`'s ([`crate::issue::renew`]) on the kubeconfigs named. Everything is
//! read and checked before anything is written: a bad input writes nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{
    BundleDestArgs, KubeconfigCommand, KubeconfigRenewArgs, KubeconfigSetCaArgs,
    KubeconfigSetServerArgs,
};
use super::config::KubeconfigConfig;
use super::outcome::Outcome;
use crate::edit::bundle::{self as eb, Change, Edited, NewFile};
use crate::edit::kubeconfig as kc;
use crate::error::{Error, Result};
use crate::pki::cert::sha256_hex;
use crate::pki::decode::{decode, Item};
use crate::pki::Role;

pub fn run(c: &KubeconfigConfig) -> Result<Outcome> {
    match &c.command {
        KubeconfigCommand::SetServer(a) => set_server(a, &c.root, c.now),
        KubeconfigCommand::SetCa(a) => set_ca(a, &c.root, c.now),
        KubeconfigCommand::Renew(a) => renew(a, &c.root, c.now),
    }
}

/// A kubeconfig named on the command line, read and checked.
struct Input {
    /// Absolute.
    path: PathBuf,
    text: String,
}

fn usage(path: &Path, e: String) -> Error {
    Error::Usage(format!("`{}`: {e}", path.display()))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Where a file a kubeconfig references is: an absolute path on the node (under `root`), or a
/// path relative to the kubeconfig's directory.
fn resolve(root: &Path, kubeconfig: &Path, reference: &str) -> PathBuf {
    let r = Path::new(reference);
    if r.is_absolute() {
        crate::sys::fs::under_root(root, r)
    } else {
        kubeconfig.parent().unwrap_or(Path::new("/")).join(r)
    }
}

/// Reads each kubeconfig once (a file named twice is one), refusing a malformed one and one
/// that references a file that is not there.
fn load(files: &[PathBuf], root: &Path) -> Result<Vec<Input>> {
    let mut out: Vec<Input> = Vec::new();
    for f in files {
        let path = absolute(f)?;
        if out.iter().any(|i| i.path == path) {
            continue;
        }
        let text = crate::sys::fs::read_text(&path, "a kubeconfig (YAML text)")?;
        kc::clusters(&text).map_err(|e| usage(&path, e.to_string()))?;
        for r in kc::references(&text).map_err(|e| usage(&path, e.to_string()))? {
            let at = resolve(root, &path, &r.path);
            if crate::sys::fs::read_file(&at).is_err() {
                return Err(usage(
                    &path,
                    format!(
                        "expected the file {} names (`{}`) at `{}`, found no readable file there{}",
                        r.at,
                        r.path,
                        at.display(),
                        if root == Path::new("/") {
                            " (pass --root DIR when the node's files are mounted elsewhere)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        out.push(Input { path, text });
    }
    Ok(out)
}

/// What the kubeconfig is for: from its name, else from the client certificate of its current
/// user (embedded or referenced).
fn role_of(input: &Input, root: &Path) -> Role {
    use crate::pki::kubeconfig::Source;
    let Ok(parsed) = crate::pki::kubeconfig::parse(&input.path, &input.text) else {
        return Role::Unknown;
    };
    let user = parsed
        .current_user
        .as_ref()
        .and_then(|name| parsed.users.iter().find(|u| &u.name == name));
    let cert = match user.and_then(|u| u.client_cert.as_ref().map(|c| (u, c))) {
        Some((_, Source::Embedded(info))) => Some((**info).clone()),
        Some((u, Source::File(_))) => kc::references(&input.text)
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.at == format!("users[{}].client-certificate", u.name))
            .and_then(|r| crate::sys::fs::read_opt(&resolve(root, &input.path, &r.path)))
            .and_then(|bytes| {
                decode(&input.path, &bytes)
                    .items
                    .into_iter()
                    .find_map(|i| match i {
                        Item::Cert { index: 0, info } => Some(*info),
                        _ => None,
                    })
            }),
        _ => None,
    };
    cert.map_or(Role::Unknown, |c| crate::pki::role::detect(&input.path, &c))
}

/// An edited kubeconfig as a bundle entry: its own mode kept (0600 when it cannot be read).
fn edited(input: &Input, root: &Path, new: String, changes: Vec<Change>) -> Edited {
    let role = role_of(input, root);
    Edited {
        target: input.path.clone(),
        kind: "kubeconfig",
        role,
        components: crate::issue::bundle::components(role),
        mode: crate::sys::fs::mode(&input.path).unwrap_or(0o600),
        old: input.text.clone().into_bytes(),
        new: new.into_bytes(),
        changes,
    }
}

/// The clusters whose `field` differs between the two texts.
fn changes(
    old: &str,
    new: &str,
    field: &str,
    value: impl Fn(&kc::Cluster) -> String,
) -> Vec<Change> {
    let (before, after) = (
        kc::clusters(old).unwrap_or_default(),
        kc::clusters(new).unwrap_or_default(),
    );
    before
        .iter()
        .zip(&after)
        .filter(|(b, a)| value(b) != value(a))
        .map(|(b, a)| Change {
            at: format!("clusters[{}].{field}", b.name),
            before: value(b),
            after: value(a),
        })
        .collect()
}

fn set_server(a: &KubeconfigSetServerArgs, root: &Path, now: i64) -> Result<Outcome> {
    let inputs = load(&a.files, root)?;
    // Said once everything is written: a refused run prints its one line and nothing else.
    let mut out: Vec<u8> = Vec::new();
    let mut edits = Vec::new();
    for input in &inputs {
        let new = kc::set_server(&input.text, &a.url, a.cluster.as_deref())
            .map_err(|e| usage(&input.path, e.to_string()))?;
        let changes = changes(&input.text, &new, "server", |c| {
            c.server.clone().unwrap_or_default()
        });
        say_changes(&mut out, input, &changes, &a.url)?;
        if !changes.is_empty() {
            edits.push(edited(input, root, new, changes));
        }
    }
    if edits.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to change: every kubeconfig named already points at {}",
            a.url
        )));
    }
    deliver(&mut out, &a.dest, None, now, |taken| {
        Ok(eb::edited_files(&edits, taken))
    })?;
    print(&out)
}

fn set_ca(a: &KubeconfigSetCaArgs, root: &Path, now: i64) -> Result<Outcome> {
    let ca_path = absolute(&a.ca_file)?;
    let pem = crate::sys::fs::read_file(&ca_path)?;
    kc::check_ca_pem(&pem).map_err(|e| usage(&ca_path, e.to_string()))?;
    let subject = decode(&ca_path, &pem)
        .items
        .into_iter()
        .find_map(|i| match i {
            Item::Cert { info, .. } => Some(info.subject),
            _ => None,
        })
        .ok_or_else(|| Error::Input {
            path: ca_path.clone(),
            expected: "PEM CA certificates".into(),
            found: "no certificate".into(),
        })?;
    let inputs = load(&a.files, root)?;
    // Said once everything is written: a refused run prints its one line and nothing else.
    let mut out: Vec<u8> = Vec::new();
    let mut edits = Vec::new();
    let digest = |c: &kc::Cluster| {
        use base64::Engine;
        let data: String = c
            .ca_data
            .as_deref()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(|pem| format!("sha256:{}", sha256_hex(&pem)))
            .unwrap_or_else(|_| "unreadable".into())
    };
    for input in &inputs {
        let new = kc::set_ca_data(&input.text, &pem, a.cluster.as_deref())
            .map_err(|e| usage(&input.path, e.to_string()))?;
        let changes = changes(&input.text, &new, "certificate-authority-data", digest);
        say_changes(&mut out, input, &changes, &ca_path.display().to_string())?;
        if !changes.is_empty() {
            edits.push(edited(input, root, new, changes));
        }
    }
    if edits.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to change: every kubeconfig named already embeds {}",
            ca_path.display()
        )));
    }
    let ca = Some((ca_path.display().to_string(), subject));
    deliver(&mut out, &a.dest, ca, now, |taken| {
        Ok(eb::edited_files(&edits, taken))
    })?;
    print(&out)
}

fn renew(a: &KubeconfigRenewArgs, root: &Path, now: i64) -> Result<Outcome> {
    use crate::issue::reissue::Action;
    let inputs = load(&a.files, root)?;
    for input in &inputs {
        let parsed = crate::pki::kubeconfig::parse(&input.path, &input.text)
            .map_err(|e| usage(&input.path, e.to_string()))?;
        if !parsed.users.iter().any(|u| u.client_cert.is_some()) {
            return Err(usage(
                &input.path,
                "expected a user with a client certificate (embedded or by file), found none: token and exec credentials have nothing to renew".into(),
            ));
        }
    }
    let paths: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
    let req = crate::issue::renew::RenewRequest {
        paths: &paths,
        root,
        within: 0,
        all: true,
        ca: a.ca.as_deref().zip(a.ca_key.as_deref()),
        validity: None,
        now,
    };
    let r = crate::issue::renew::renew(&req)?;
    if let Some(o) = r.outcomes.iter().find(|o| o.action == Action::Refused) {
        return Err(usage(
            &o.target.path,
            format!(
                "cannot renew {}: {}",
                o.target
                    .user
                    .as_ref()
                    .map_or("its certificate".to_string(), |u| format!(
                        "the client certificate of user `{u}`"
                    )),
                o.reason.as_deref().unwrap_or("refused")
            ),
        ));
    }
    let manifest = r.manifest.ok_or_else(|| {
        Error::Usage(
            "nothing to renew: no client certificate found in the kubeconfigs named".into(),
        )
    })?;
    // Said once everything is written: a refused run prints its one line and nothing else.
    let mut out: Vec<u8> = Vec::new();
    let w = Error::Output;
    for o in r.outcomes.iter().filter(|o| o.action == Action::Reissued) {
        let Some(issued) = &o.issued else { continue };
        let who = match &o.target.user {
            Some(u) => format!("{} (user {u})", o.target.path.display()),
            None => o.target.path.display().to_string(),
        };
        writeln!(
            out,
            "{who}: {} renewed, key and SANs kept; serial {} -> {}; valid until {}{}",
            o.target.info.subject,
            o.target.info.serial,
            issued.info.serial,
            crate::duration::rfc3339(issued.info.not_after),
            o.ca.as_ref()
                .map(|(loc, _)| format!("; signed by {loc}"))
                .unwrap_or_default()
        )
        .map_err(w)?;
        for warning in &issued.warnings {
            writeln!(out, "  warning: {warning}").map_err(w)?;
        }
    }
    let entries: Vec<(serde_json::Value, Vec<u8>)> = manifest
        .files
        .iter()
        .map(|f| {
            serde_json::to_value(f)
                .map(|v| (v, f.contents.clone()))
                .map_err(|e| Error::Usage(e.to_string()))
        })
        .collect::<Result<_>>()?;
    let ca = Some((manifest.ca.certificate.clone(), manifest.ca.subject.clone()));
    deliver(&mut out, &a.dest, ca, now, |taken| {
        eb::placed(entries, taken).map_err(Error::from)
    })?;
    print(&out)
}

fn print(said: &[u8]) -> Result<Outcome> {
    std::io::stdout()
        .lock()
        .write_all(said)
        .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}

fn say_changes(out: &mut dyn Write, input: &Input, changes: &[Change], to: &str) -> Result<()> {
    let w = Error::Output;
    if changes.is_empty() {
        return writeln!(
            out,
            "{}: already {to}; left out of the bundle",
            input.path.display()
        )
        .map_err(w);
    }
    for c in changes {
        writeln!(
            out,
            "{}: {} {} -> {}",
            input.path.display(),
            c.at,
            c.before,
            c.after
        )
        .map_err(w)?;
    }
    Ok(())
}

/// Writes the files `make` lays out (given the bundle paths already taken) into a new bundle
/// (`--out`) or adds them to an existing one (`--into`, verified first).
fn deliver(
    out: &mut dyn Write,
    dest: &BundleDestArgs,
    ca: Option<(String, String)>,
    now: i64,
    make: impl FnOnce(&[PathBuf]) -> Result<Vec<NewFile>>,
) -> Result<()> {
    let w = Error::Output;
    let tuples = |files: &[NewFile]| -> Vec<(PathBuf, u32, Vec<u8>)> {
        files
            .iter()
            .map(|f| (f.bundle_path.clone(), f.mode, f.contents.clone()))
            .collect()
    };
    let json = |v: &serde_json::Value| {
        serde_json::to_vec_pretty(v).map_err(|e| Error::Usage(e.to_string()))
    };
    match (&dest.out, &dest.into) {
        (Some(dir), _) => {
            let files = make(&[])?;
            let manifest = eb::manifest(&crate::duration::rfc3339(now), ca, &files);
            crate::sys::fs::write_bundle(dir, &tuples(&files), &json(&manifest)?)?;
            writeln!(
                out,
                "bundle written to {} ({} files, bundle.json); originals untouched",
                dir.display(),
                files.len()
            )
            .map_err(w)
        }
        (None, Some(dir)) => {
            let bytes = crate::sys::fs::read_file(&dir.join("bundle.json"))?;
            let read = |p: &Path| crate::sys::fs::read_opt(p);
            let mut manifest = eb::existing(dir, &bytes, &read)?;
            let files = make(&eb::taken(&manifest))?;
            eb::add(&mut manifest, &files)?;
            if let (Some((certificate, subject)), true) = (ca, manifest["ca"]["certificate"] == "")
            {
                manifest["ca"] =
                    serde_json::json!({"certificate": certificate, "subject": subject});
            }
            crate::sys::fs::add_to_bundle(dir, &tuples(&files), &json(&manifest)?)?;
            writeln!(
                out,
                "added {} files to the bundle {} (now {} files); originals untouched",
                files.len(),
                dir.display(),
                manifest["files"].as_array().map_or(0, Vec::len)
            )
            .map_err(w)
        }
        (None, None) => Err(Error::Usage(
            "expected --out DIR or --into DIR, found neither".into(),
        )),
    }
}
