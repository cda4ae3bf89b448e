//! The switch of a node that does not sign its own leaves (every node of `certs cluster
//! rotate-ca` but the CA host): `certs rotate-ca leaves` lists the certificates of its leaves of
//! the old CA (certificates only: subject, SANs, usages, public key; never a key), the CA host
//! signs them again (`certs cluster rotate-ca-sign`), and `certs rotate-ca switch --signed FILE`
//! splices each signed certificate into the node's own file in place of the leaf it replaces,
//! once it is checked to be that leaf's (same subject, SANs, usages and public key, signed by the
//! new CA, valid now). Anything else is refused and nothing is written.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::LeavesArgs;
use super::node::{survey, Survey};
use super::{absolute, now_of, old_ca, read_cas};
use crate::cli::args::ResultOutput;
use crate::cli::Outcome;
use crate::error::{Error, Result};
use crate::issue::target::Reissuable as Target;
use crate::issue::Issued;
use crate::pki::cert::CertInfo;
use crate::rotate::{certs_in, pem_of};

/// The kubeconfig user of an embedded client certificate (`users[NAME].client-certificate-data`).
pub(super) fn user_of(embedded: Option<&str>) -> Option<String> {
    embedded
        .and_then(|e| e.strip_prefix("users["))
        .and_then(|e| e.rsplit_once("]."))
        .map(|(name, _)| name.to_string())
}

/// Every leaf of the old CA on the node loaded as `certs reissue` loads a target; one line per
/// leaf that cannot be.
pub(super) fn old_targets(s: &Survey) -> (Vec<(String, Target)>, Vec<String>) {
    let mut loaded: HashMap<PathBuf, Vec<Target>> = HashMap::new();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for l in s.old_leaves() {
        let e = &s.inventory.certificates[l.entry];
        if e.location.index > 0 {
            problems.push(format!(
                "`{}`: the leaf is certificate #{} of its file, and only a file's first certificate is reissued (the rest is its chain)",
                l.at, e.location.index
            ));
            continue;
        }
        let user = user_of(e.location.embedded.as_deref());
        let targets = match loaded.get(&e.location.path) {
            Some(t) => t,
            None => match crate::issue::target::load(&e.location.path) {
                Ok(t) => loaded.entry(e.location.path.clone()).or_insert(t),
                Err(err) => {
                    problems.push(format!("`{}`: {err}", l.at));
                    continue;
                }
            },
        };
        match targets
            .iter()
            .find(|t| t.user == user && t.info.der == e.info.der)
        {
            Some(t) => out.push((l.at.clone(), t.clone())),
            None => problems.push(format!(
                "`{}`: expected the certificate the scan found, found a file that changed since (run switch again)",
                l.at
            )),
        }
    }
    (out, problems)
}

/// Leaves with their new certificates, and one line per leaf (or given certificate) that has
/// none.
pub(super) type Paired = (Vec<(Target, Issued)>, Vec<String>);

/// Whether `c` may stand for `leaf`: the same subject, SANs, usages and public key, signed by
/// `new`, valid at `now`.
fn replaces(c: &CertInfo, leaf: &CertInfo, new: &CertInfo, now: i64) -> bool {
    !c.is_ca
        && c.is_signed_by(new)
        && c.subject_raw == leaf.subject_raw
        && c.sans == leaf.sans
        && c.public_key == leaf.public_key
        && c.key_usage == leaf.key_usage
        && c.ext_key_usage == leaf.ext_key_usage
        && c.not_before <= now
        && now < c.not_after
}

/// Each old leaf paired with its certificate from `signed` (the CA host's signatures); one line
/// per leaf without one and per given certificate that replaces no leaf.
pub(super) fn splice(
    targets: Vec<(String, Target)>,
    signed_file: &Path,
    new: &CertInfo,
    now: i64,
) -> Result<Paired> {
    let given = certs_in(&crate::sys::fs::read_file(signed_file)?);
    let mut used = vec![false; given.len()];
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (at, t) in targets {
        match given.iter().position(|c| replaces(c, &t.info, new, now)) {
            Some(i) => {
                used[i] = true;
                let info = given[i].clone();
                out.push((
                    t,
                    Issued {
                        der: info.der.clone(),
                        info,
                        new_key: None,
                        warnings: Vec::new(),
                    },
                ));
            }
            None => problems.push(format!(
                "`{at}`: expected a certificate in {} signed by `{}` with this leaf's subject, SANs, usages and public key, valid now; found none",
                signed_file.display(),
                new.subject
            )),
        }
    }
    for (c, _) in given.iter().zip(&used).filter(|(_, u)| !**u) {
        let found = if !c.is_signed_by(new) {
            format!("a certificate issued by `{}`", c.issuer)
        } else {
            "one that matches none of them (another subject, SANs, usages or key, or not valid now)"
                .to_string()
        };
        problems.push(format!(
            "{}: `{}` (serial {}): expected a certificate of the new CA replacing a leaf of the old CA on this node, found {found}",
            signed_file.display(),
            c.subject,
            c.serial
        ));
    }
    Ok((out, problems))
}

/// `certs rotate-ca leaves`: the certificates of the node's leaves of the old CA, and whether
/// the node keeps a signing file of the old CA (its key beside it), as the CA host needs them.
pub fn run(a: &LeavesArgs) -> Result<Outcome> {
    let now = now_of(a.now.as_deref())?;
    let root = absolute(&a.root)?;
    let new = read_cas(&a.new_ca)?.remove(0);
    let old = old_ca(&absolute(&a.ca_cert)?, Some(&new))?;
    let s = survey(&root, &a.paths, now, &old, Some(&new))?;
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut leaves = Vec::new();
    let mut pem = String::new();
    for l in s.old_leaves() {
        let info = &s.inventory.certificates[l.entry].info;
        if !seen.contains(&info.der.as_slice()) {
            seen.push(&info.der);
            pem.push_str(&pem_of(info));
        }
        leaves.push(json!({"at": l.at, "subject": info.subject, "serial": info.serial}));
    }
    let signers: Vec<&Path> = s
        .signers
        .iter()
        .filter(|f| certs_in(&f.bytes).first().is_some_and(|c| c.der == old.der))
        .map(|f| f.cert.as_path())
        .collect();
    let mut o = std::io::stdout().lock();
    match a.output {
        ResultOutput::Json => writeln!(
            o,
            "{}",
            json!({
                "schema": "certs.rotate-ca-leaves/v1",
                "node_stage": s.stage().0,
                "leaves": leaves,
                "certificates": pem,
                "old_signers": signers,
                "needs_new_ca_key": !signers.is_empty(),
            })
        ),
        ResultOutput::Text => {
            let mut text = format!(
                "{} leaf(s) of `{}`; {} signing file(s) of it here{}\n",
                leaves.len(),
                old.subject,
                signers.len(),
                if signers.is_empty() {
                    String::new()
                } else {
                    " (the switch needs the new CA key here)".to_string()
                }
            );
            text.push_str(&pem);
            write!(o, "{text}")
        }
    }
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}
