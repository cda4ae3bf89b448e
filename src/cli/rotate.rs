//! `certs rotate-ca trust | status`: reads the node (its trust flags through
//! [`crate::sys::node`], its kubeconfigs through a scan), works out each stage's edits with
//! [`crate::rotate`], and writes one bundle `certs rollout` installs. The new CA, when this
//! run makes it, is written beside the bundle (never inside it: a bundle is copied to every
//! node, the CA key stays on this one).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::args::ResultOutput;
use super::config::parse_time;
use crate::edit::bundle::{Change, Edited};
use crate::error::{exit, Error, Result};
use crate::pki::cert::CertInfo;
use crate::pki::Role;
use crate::rotate::stage::{self, Anchor, Facts, Signer, Stage};
use crate::rotate::trust::{self as rt, FileVerdict};
use crate::rotate::{certs_in, holds, pem_of};

/// Flags (and kubelet config keys read as flags) that name a CA file a component trusts.
pub const TRUST_FLAGS: &[&str] = &[
    "client-ca-file",
    "trusted-ca-file",
    "peer-trusted-ca-file",
    "etcd-cafile",
    "requestheader-client-ca-file",
    "root-ca-file",
    "kubelet-certificate-authority",
];

/// Extra places kubeconfigs are read from, besides the standard PKI locations.
const KUBECONFIGS: &[&str] = &["/root/.kube/config"];

/// The Examples of `certs rotate-ca --help`.
pub const EXAMPLES: &str = "Examples:
  # keep a copy of the CA being replaced: every stage names it
  cp /etc/kubernetes/pki/ca.crt /root/old-ca.crt
  certs rotate-ca trust /root/old-ca.crt --out /root/rotate-trust
  certs rollout apply /root/rotate-trust
  certs rotate-ca status /root/old-ca.crt";

#[derive(Debug, clap::Subcommand)]
pub enum RotateCommand {
    /// Stage 1: add a new CA (generated like the old one, or --new-ca) to every trust anchor
    /// that holds the old CA (trust files and kubeconfigs), into a bundle for `certs rollout`
    #[command(after_help = "Examples:
  # keep a copy of the CA being replaced: every stage names it
  cp /etc/kubernetes/pki/ca.crt /root/old-ca.crt
  certs rotate-ca trust /root/old-ca.crt --out /root/rotate-trust
  certs rollout apply /root/rotate-trust
  certs rotate-ca status /root/old-ca.crt")]
    Trust(TrustArgs),
    /// Which stage of a rotation this node is in (nothing, trust, switch, finished), from its files
    #[command(after_help = "Examples:
  certs rotate-ca status /root/old-ca.crt
  certs rotate-ca status /root/old-ca.crt --root /mnt/node1 -o json")]
    Status(StatusArgs),
}

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The CA being replaced: a PEM file whose first certificate (other than --new-ca) is it
    #[arg(value_name = "CA_CERT")]
    pub ca_cert: PathBuf,

    /// More files or directories to read (kubeconfigs; CA files holding the old CA) besides
    /// the standard locations under --root, /root/.kube/config and the files the node's
    /// components name
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The node's `/`: where its manifests, units, configuration and PKI are read
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// The new CA's certificate [default: one made like the old CA, written beside the bundle,
    /// or the one the node's anchors already hold beside the old]
    #[arg(long, value_name = "FILE", requires = "new_ca_key")]
    pub new_ca: Option<PathBuf>,

    /// The new CA's private key (it must pair with --new-ca)
    #[arg(long, value_name = "FILE", requires = "new_ca")]
    pub new_ca_key: Option<PathBuf>,

    /// Bundle directory to create (a new CA this run makes goes to DIR-new-ca/)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Make the new CA as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Output: readable lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The CA being replaced (the copy kept before `trust`)
    #[arg(value_name = "CA_CERT")]
    pub ca_cert: PathBuf,

    /// More files or directories to read besides the standard locations under --root
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// The node's `/`
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// The new CA's certificate [default: the one the node's anchors hold beside the old]
    #[arg(long, value_name = "FILE")]
    pub new_ca: Option<PathBuf>,

    /// Output: readable lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

pub fn run(cmd: &RotateCommand) -> Result<u8> {
    match cmd {
        RotateCommand::Trust(a) => trust(a),
        RotateCommand::Status(a) => status(a),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|source| Error::Read {
        path: p.to_path_buf(),
        source,
    })
}

/// The CA certificates of a file the user named; none is an error naming it.
fn read_cas(path: &Path) -> Result<Vec<CertInfo>> {
    let bytes = crate::sys::fs::read_file(path)?;
    let cas = certs_in(&bytes);
    if cas.is_empty() {
        return Err(Error::Input {
            path: path.to_path_buf(),
            expected: "a PEM CA certificate".into(),
            found: "no certificate".into(),
        });
    }
    if let Some(leaf) = cas.iter().find(|c| !c.is_ca) {
        return Err(Error::Input {
            path: path.to_path_buf(),
            expected: "CA certificates (basicConstraints CA:TRUE)".into(),
            found: format!("a leaf ({})", leaf.subject),
        });
    }
    Ok(cas)
}

/// The old CA: the first certificate of CA_CERT that is not the new CA.
fn old_ca(path: &Path, new: Option<&CertInfo>) -> Result<CertInfo> {
    read_cas(path)?
        .into_iter()
        .find(|c| new.is_none_or(|n| n.der != c.der))
        .ok_or_else(|| Error::Input {
            path: path.to_path_buf(),
            expected: "the CA being replaced".into(),
            found: "only the new CA (--new-ca)".into(),
        })
}

/// A CA file a component trusts (or a kubeconfig names), with why it is one.
struct AnchorFile {
    path: PathBuf,
    why: Vec<String>,
    bytes: Vec<u8>,
}

struct KubeconfigFile {
    path: PathBuf,
    text: String,
}

/// Every trust anchor of the node: CA files named by trust flags, by kubeconfig clusters and on
/// the command line, and the kubeconfigs.
struct Anchors {
    files: Vec<AnchorFile>,
    kubeconfigs: Vec<KubeconfigFile>,
}

impl Anchors {
    fn add_file(&mut self, path: PathBuf, why: String) {
        if let Some(f) = self.files.iter_mut().find(|f| f.path == path) {
            if !f.why.contains(&why) {
                f.why.push(why);
            }
            return;
        }
        // A file a flag names that is not on this node is no anchor here (preflight says so).
        let Some(bytes) = crate::sys::fs::read_opt(&path) else {
            return;
        };
        self.files.push(AnchorFile {
            path,
            why: vec![why],
            bytes,
        });
    }

    /// Every certificate an anchor holds, with where.
    fn certs(&self) -> Vec<(String, CertInfo)> {
        let mut out = Vec::new();
        for f in &self.files {
            for c in certs_in(&f.bytes) {
                out.push((f.path.display().to_string(), c));
            }
        }
        for k in &self.kubeconfigs {
            for c in crate::edit::kubeconfig::clusters(&k.text).unwrap_or_default() {
                if let Some(pem) = c.ca_data.as_deref().and_then(decode_b64) {
                    for cert in certs_in(&pem) {
                        out.push((format!("{} cluster {}", k.path.display(), c.name), cert));
                    }
                }
            }
        }
        out
    }
}

fn decode_b64(data: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
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

/// Reads the node's anchors: trust flags of every component, the kubeconfigs of the standard
/// locations, of `/root/.kube/config`, of the components' files and of `paths`, and the CA files
/// those kubeconfigs name.
fn anchors(root: &Path, paths: &[PathBuf], now: i64) -> Result<Anchors> {
    let node = crate::sys::node::read(root);
    let mut out = Anchors {
        files: Vec::new(),
        kubeconfigs: Vec::new(),
    };
    for c in &node {
        for flag in TRUST_FLAGS {
            if let Some(p) = c.path(root, flag) {
                out.add_file(p, format!("{} {}", c.kind, c.origin(flag)));
            }
        }
    }
    let mut scan: Vec<PathBuf> = crate::pki::scan::resolve_paths(&[], root).unwrap_or_default();
    for extra in KUBECONFIGS {
        let p = crate::sys::fs::under_root(root, Path::new(extra));
        if p.is_file() {
            scan.push(p);
        }
    }
    for p in paths {
        let p = absolute(p)?;
        if crate::sys::fs::is_absent(&p) {
            return Err(Error::Input {
                path: p,
                expected: "a file or directory to read".into(),
                found: "nothing there".into(),
            });
        }
        scan.push(p);
    }
    scan.dedup();
    let mut kubeconfigs: Vec<PathBuf> = Vec::new();
    if !scan.is_empty() {
        let inv = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
            paths: &scan,
            root,
            now,
            warn_within: 0,
        })?;
        kubeconfigs.extend(inv.kubeconfigs.iter().map(|k| k.path.clone()));
        // A CA file named on the command line is an anchor when it holds the old CA.
        for p in paths {
            let p = absolute(p)?;
            if p.is_file() && !inv.kubeconfigs.iter().any(|k| k.path == p) {
                out.add_file(p, "named on the command line".into());
            }
        }
    }
    for c in &node {
        for f in &c.files {
            let looks = crate::sys::fs::read_opt(f)
                .and_then(|b| String::from_utf8(b).ok())
                .is_some_and(|t| crate::pki::kubeconfig::looks_like(&t));
            if looks {
                kubeconfigs.push(f.clone());
            }
        }
    }
    for path in kubeconfigs {
        let path = absolute(&path)?;
        if out.kubeconfigs.iter().any(|k| k.path == path) {
            continue;
        }
        let text = crate::sys::fs::read_text(&path, "a kubeconfig (YAML text)")?;
        if let Ok(clusters) = crate::edit::kubeconfig::clusters(&text) {
            for c in clusters {
                if let (None, Some(f)) = (&c.ca_data, &c.ca_file) {
                    out.add_file(
                        resolve(root, &path, f),
                        format!(
                            "{} clusters[{}].certificate-authority",
                            path.display(),
                            c.name
                        ),
                    );
                }
            }
        }
        out.kubeconfigs.push(KubeconfigFile { path, text });
    }
    Ok(out)
}

/// The CA the node already trusts beside the old one, made to follow it
/// ([`crate::rotate::ca::is_successor`]); several different ones are an error.
fn successor(anchors: &Anchors, old: &CertInfo) -> Result<Option<(CertInfo, String)>> {
    let mut found: Vec<(CertInfo, String)> = Vec::new();
    for (at, c) in anchors.certs() {
        if crate::rotate::ca::is_successor(old, &c) && !found.iter().any(|(f, _)| f.der == c.der) {
            found.push((c, at));
        }
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(Error::Usage(format!(
            "expected at most one CA following `{}` on this node, found {} ({}): name the new CA with --new-ca FILE --new-ca-key FILE",
            old.subject,
            found.len(),
            found
                .iter()
                .map(|(c, at)| format!("{} in {at}", c.subject))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A new CA this run made: its certificate and key, to be written beside the bundle.
struct Made {
    dir: PathBuf,
    cert: (PathBuf, Vec<u8>),
    key: (PathBuf, Vec<u8>),
}

/// Makes the new CA like `old` (file names and key format those of the old CA's files,
/// `ca_cert` and the key beside it).
fn make_ca(old: &CertInfo, ca_cert: &Path, out: &Path, now: i64) -> Result<(CertInfo, Made)> {
    let key = crate::issue::SigningKey::generate(&old.key)?;
    let der = crate::rotate::ca::new_ca(old, &key, now).map_err(Error::Usage)?;
    let info = CertInfo::from_der(&der)?;
    let old_key = crate::rollout::rebase::key_candidates(ca_cert)
        .into_iter()
        .take(2)
        .find(|p| p.is_file());
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
    let key_pem = key.to_pem(format)?;
    let cert_name = ca_cert
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "ca.crt".into());
    let key_name = old_key
        .and_then(|p| p.file_name().map(|n| n.to_os_string()))
        .unwrap_or_else(|| "ca.key".into());
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rotate".into());
    let dir = out.with_file_name(format!("{name}-new-ca"));
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

fn write_made(m: &Made) -> Result<()> {
    crate::sys::fs::create_new_dir(&m.dir)?;
    crate::sys::fs::write_synced(&m.key.0, &m.key.1, 0o600)?;
    crate::sys::fs::write_synced(&m.cert.0, &m.cert.1, 0o644)?;
    Ok(crate::sys::fs::sync_dir(&m.dir)?)
}

/// What a kubeconfig is for: the role of its current user's client certificate.
fn kubeconfig_role(path: &Path, text: &str, root: &Path) -> Role {
    use crate::pki::kubeconfig::Source;
    let Ok(parsed) = crate::pki::kubeconfig::parse(path, text) else {
        return Role::Unknown;
    };
    let user = parsed
        .current_user
        .as_ref()
        .and_then(|n| parsed.users.iter().find(|u| &u.name == n));
    let cert = match user.and_then(|u| u.client_cert.as_ref()) {
        Some(Source::Embedded(info)) => Some((**info).clone()),
        Some(Source::File(f)) => {
            let at = if f.is_absolute() {
                crate::sys::fs::under_root(root, f)
            } else {
                f.clone()
            };
            crate::sys::fs::read_opt(&at).and_then(|b| certs_in(&b).into_iter().next())
        }
        _ => None,
    };
    cert.map_or(Role::Unknown, |c| crate::pki::role::detect(path, &c))
}

fn mode_of(path: &Path, default: u32) -> u32 {
    crate::sys::fs::mode(path).unwrap_or(default) & 0o7777
}

/// One line of the result: an anchor and what the stage does to it.
struct Line {
    target: PathBuf,
    kind: &'static str,
    action: &'static str,
    why: Vec<String>,
}

fn trust(a: &TrustArgs) -> Result<u8> {
    let now = match &a.now {
        Some(t) => parse_time(t)?,
        None => crate::sys::clock::now(),
    };
    let root = absolute(&a.root)?;
    let out = absolute(&a.out)?;
    let ca_cert = absolute(&a.ca_cert)?;
    let given = match (&a.new_ca, &a.new_ca_key) {
        (Some(c), Some(k)) => Some(crate::issue::target::explicit_ca(c, k)?),
        _ => None,
    };
    let old = old_ca(&ca_cert, given.as_ref().map(|c| &c.info))?;
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
                    .any(|p| p.is_file())
        })
        .map_or_else(|| ca_cert.clone(), |f| f.path.clone());
    // The new CA: given, already trusted beside the old one, or made now.
    let (new, source, made) = match &given {
        Some(ca) => (
            ca.info.clone(),
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
                    let role = kubeconfig_role(&k.path, &k.text, &root);
                    lines.push(Line {
                        target: k.path.clone(),
                        kind: "kubeconfig",
                        action: "added",
                        why: v.changes.iter().map(|c| c.at.clone()).collect(),
                    });
                    edited.push(Edited {
                        target: k.path.clone(),
                        kind: "kubeconfig",
                        role,
                        components: crate::issue::bundle::components(role),
                        mode: mode_of(&k.path, 0o600),
                        old: k.text.clone().into_bytes(),
                        new: text.into_bytes(),
                        changes: v.changes,
                    });
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
            print_lines(&mut o, &lines)?;
        }
        return Ok(exit::OK);
    }
    let files = crate::edit::bundle::edited_files(&edited, &[]);
    let mut manifest = crate::edit::bundle::manifest(
        &crate::duration::rfc3339(now),
        Some((signing.display().to_string(), old.subject.clone())),
        &files,
    );
    manifest["root"] = json!(root);
    manifest["rotate_ca"] = json!({
        "stage": "trust",
        "old_ca": {"subject": old.subject, "serial": old.serial, "sha256": old.sha256},
        "new_ca": {"subject": new.subject, "serial": new.serial, "sha256": new.sha256,
                   "certificate": source["certificate"], "key": source["key"]},
    });
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Usage(e.to_string()))?;
    let written: Vec<(PathBuf, u32, Vec<u8>)> = files
        .iter()
        .map(|f| (f.bundle_path.clone(), f.mode, f.contents.clone()))
        .collect();
    if let Some(m) = &made {
        write_made(m)?;
    }
    crate::sys::fs::write_bundle(&out, &written, &bytes)?;
    if a.output == ResultOutput::Json {
        writeln!(o, "{}", result(true, Some(&out))).map_err(Error::Output)?;
        return Ok(exit::OK);
    }
    writeln!(
        o,
        "trust: every anchor holding `{}` gets `{}` after it",
        old.subject, new.subject
    )
    .map_err(Error::Output)?;
    print_lines(&mut o, &lines)?;
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
        "bundle: {} ({} file(s)); install it with: certs rollout apply {} --root {}",
        out.display(),
        files.len(),
        out.display(),
        root.display()
    )
    .map_err(Error::Output)?;
    Ok(exit::OK)
}

fn print_lines(o: &mut std::io::StdoutLock, lines: &[Line]) -> Result<()> {
    for l in lines {
        writeln!(
            o,
            "  {}  {}  ({}: {})",
            l.target.display(),
            if l.action == "added" {
                "+ new CA"
            } else {
                "already trusts both"
            },
            l.kind,
            l.why.join("; ")
        )
        .map_err(Error::Output)?;
    }
    Ok(())
}

fn status(a: &StatusArgs) -> Result<u8> {
    let now = crate::sys::clock::now();
    let root = absolute(&a.root)?;
    let ca_cert = absolute(&a.ca_cert)?;
    let given = match &a.new_ca {
        Some(p) => Some(read_cas(p)?.remove(0)),
        None => None,
    };
    let old = old_ca(&ca_cert, given.as_ref())?;
    let anchors = anchors(&root, &a.paths, now)?;
    let new = match given {
        Some(n) => Some(n),
        None => successor(&anchors, &old)?.map(|(c, _)| c),
    };
    let mut facts = Facts::default();
    let is_new = |c: &CertInfo| new.as_ref().is_some_and(|n| n.der == c.der);
    for f in &anchors.files {
        let held = certs_in(&f.bytes);
        let (o, n) = (holds(&held, &old), held.iter().any(is_new));
        if !(o || n) {
            continue;
        }
        facts.anchors.push(Anchor {
            path: f.path.display().to_string(),
            old: o,
            new: n,
        });
        // A CA file with a private key beside it signs: its first certificate is the signer.
        let has_key = crate::rollout::rebase::key_candidates(&f.path)
            .into_iter()
            .take(2)
            .any(|p| p.is_file());
        if has_key {
            facts.signers.push(Signer {
                path: f.path.display().to_string(),
                new_first: held.first().is_some_and(is_new),
            });
        }
    }
    for k in &anchors.kubeconfigs {
        for c in crate::edit::kubeconfig::clusters(&k.text).unwrap_or_default() {
            let held = c
                .ca_data
                .as_deref()
                .and_then(decode_b64)
                .map(|p| certs_in(&p))
                .unwrap_or_default();
            let (o, n) = (holds(&held, &old), held.iter().any(is_new));
            if o || n {
                facts.anchors.push(Anchor {
                    path: format!("{} clusters[{}]", k.path.display(), c.name),
                    old: o,
                    new: n,
                });
            }
        }
    }
    let mut scan = crate::pki::scan::resolve_paths(&[], &root).unwrap_or_default();
    scan.extend(anchors.kubeconfigs.iter().map(|k| k.path.clone()));
    scan.dedup();
    if !scan.is_empty() {
        let inv = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
            paths: &scan,
            root: &root,
            now,
            warn_within: 0,
        })?;
        for c in inv.certificates.iter().filter(|c| !c.info.is_ca) {
            let at = match &c.location.embedded {
                Some(e) => format!("{} {e}", c.location.path.display()),
                None => c.location.path.display().to_string(),
            };
            if facts.old_leaves.contains(&at) || facts.new_leaves.contains(&at) {
                continue;
            }
            if old.may_have_issued(&c.info) && c.info.is_signed_by(&old) {
                facts.old_leaves.push(at);
            } else if let Some(n) = new
                .as_ref()
                .filter(|n| n.may_have_issued(&c.info) && c.info.is_signed_by(n))
            {
                let _ = n;
                facts.new_leaves.push(at);
            }
        }
    }
    let (stage, why) = stage::judge(&facts);
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
        exit::PROBLEM
    } else {
        exit::OK
    })
}
