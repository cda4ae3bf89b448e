//! `certs rotate-ca trust | switch | finish | status`: reads the node ([`node`]: its trust flags
//! through [`crate::sys::node`], its kubeconfigs and leaves through a scan), works out each
//! stage's edits with [`crate::rotate`], and writes one bundle `certs rollout` installs
//! ([`bundle`]). The new CA, when `trust` makes it, is written beside the bundle (never inside
//! it: a bundle is copied to every node, the CA key stays on this one); `switch` installs the
//! new CA's key as the node's signing key.

mod args;
mod bundle;
mod finish;
mod node;
mod signed;
mod status;
pub(crate) mod switch;
pub(crate) mod trust;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use args::{FinishArgs, LeavesArgs, StatusArgs, SwitchArgs, TrustArgs};

use crate::cli::Outcome;
use crate::error::{Error, Result};
use crate::pki::cert::CertInfo;
use crate::pki::Role;
use crate::rotate::certs_in;

/// The Examples of `certs rotate-ca --help`.
pub const EXAMPLES: &str = "Examples:
  # keep a copy of the CA being replaced: every stage names it
  cp /etc/kubernetes/pki/ca.crt /root/old-ca.crt
  certs rotate-ca trust /root/old-ca.crt --out /root/rotate-trust
  certs rollout apply /root/rotate-trust
  certs rotate-ca switch /root/old-ca.crt --new-ca /root/rotate-trust-new-ca/ca.crt \\
      --new-ca-key /root/rotate-trust-new-ca/ca.key --out /root/rotate-switch
  certs rollout apply /root/rotate-switch
  certs rotate-ca finish /root/old-ca.crt --new-ca /root/rotate-trust-new-ca/ca.crt --out /root/rotate-finish
  certs rollout apply /root/rotate-finish
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
    /// Stage 2: reissue every leaf of the old CA from the new one (subject, SANs, usages and
    /// keys kept) and make the signing CA files the new CA; the trust files keep both
    #[command(after_help = "Examples:
  certs rotate-ca switch /root/old-ca.crt --new-ca /root/rotate-trust-new-ca/ca.crt \\
      --new-ca-key /root/rotate-trust-new-ca/ca.key --out /root/rotate-switch
  certs rollout apply /root/rotate-switch")]
    Switch(SwitchArgs),
    /// For a switch signed elsewhere: the certificates of this node's leaves of the old CA
    /// (never a key) and whether it keeps a signing file of the old CA (its key beside it)
    #[command(after_help = "Examples:
  certs rotate-ca leaves /root/old-ca.crt --new-ca /root/new-ca.crt -o json
  # on the CA host: certs cluster rotate-ca-sign --leaves leaves.pem ... > signed.pem, then here
  certs rotate-ca switch /root/old-ca.crt --new-ca /root/new-ca.crt --signed signed.pem --out /root/rotate-switch")]
    Leaves(LeavesArgs),
    /// Stage 3: remove the old CA from every trust anchor; refused while a leaf of the node is
    /// still signed by the old CA
    #[command(after_help = "Examples:
  certs rotate-ca finish /root/old-ca.crt --new-ca /root/rotate-trust-new-ca/ca.crt --out /root/rotate-finish
  certs rollout apply /root/rotate-finish")]
    Finish(FinishArgs),
    /// Which stage of a rotation this node is in (nothing, trusted, switched, finished), from
    /// its files, and why
    #[command(after_help = "Examples:
  certs rotate-ca status /root/old-ca.crt
  certs rotate-ca status /root/old-ca.crt --root /mnt/node1 -o json")]
    Status(StatusArgs),
}

pub fn run(cmd: &RotateCommand) -> Result<Outcome> {
    match cmd {
        RotateCommand::Trust(a) => trust::run(a),
        RotateCommand::Switch(a) => switch::run(a),
        RotateCommand::Leaves(a) => signed::run(a),
        RotateCommand::Finish(a) => finish::run(a),
        RotateCommand::Status(a) => status::run(a),
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|source| Error::Read {
        path: p.to_path_buf(),
        source,
    })
}

/// `--now`, or the one clock read of the command.
fn now_of(given: Option<&str>) -> Result<i64> {
    crate::cli::config::now(given)
}

/// The CA certificates of a file the user named; none is an error naming it.
pub(crate) fn read_cas(path: &Path) -> Result<Vec<CertInfo>> {
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

/// A kubeconfig a stage edits (`action`: `added`, `removed`): the line it prints, and the file as
/// the bundle carries it (its role, mode and the components that read it kept).
fn kubeconfig_edit(
    path: &Path,
    old: &str,
    new: String,
    changes: Vec<crate::edit::bundle::Change>,
    action: &'static str,
    root: &Path,
) -> (Line, crate::edit::bundle::Edited) {
    let role = kubeconfig_role(path, old, root);
    let line = Line {
        target: path.to_path_buf(),
        kind: "kubeconfig",
        action,
        why: changes.iter().map(|c| c.at.clone()).collect(),
    };
    let edited = crate::edit::bundle::Edited {
        target: path.to_path_buf(),
        kind: "kubeconfig",
        role,
        components: crate::issue::bundle::components(role),
        mode: mode_of(path, 0o600),
        old: old.as_bytes().to_vec(),
        new: new.into_bytes(),
        changes,
    };
    (line, edited)
}

/// One line of a stage's result: a file and what the stage does to it.
struct Line {
    target: PathBuf,
    kind: &'static str,
    action: &'static str,
    why: Vec<String>,
}

impl Line {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target, "kind": self.kind, "action": self.action, "why": self.why,
        })
    }
}

fn print_lines(
    o: &mut dyn Write,
    lines: &[Line],
    label: &dyn Fn(&str) -> &'static str,
) -> Result<()> {
    for l in lines {
        writeln!(
            o,
            "  {}  {}  ({}: {})",
            l.target.display(),
            label(l.action),
            l.kind,
            l.why.join("; ")
        )
        .map_err(Error::Output)?;
    }
    Ok(())
}
