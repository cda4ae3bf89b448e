//! `certs rollout apply --rebase`: a bundle installed on a node whose target files are not the
//! ones it was made from (a rebuilt first master, a node whose certificates were renewed since).
//! Each target that is neither the file the bundle was made from nor the new one must be a
//! certificate, and the new certificate must pair with a private key on this node (beside the
//! target, named as installers name keys, or in the target file itself): the reissue kept the
//! key, so a node without it cannot use the new certificate. The plan then records the node's
//! current file (SHA-256 and serial) as the one the rollout replaces, backs up and restores.
//! Pure: file contents come through `read`.

use std::path::{Path, PathBuf};

use super::plan::Plan;
use crate::pki::cert::sha256_hex;
use crate::pki::decode::{decode, Item};

/// What rebasing did: one line per file rebased, and one line per file that cannot be.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rebased {
    pub rebased: Vec<String>,
    pub problems: Vec<String>,
}

/// Where a certificate's key is kept, by the names installers give it: `x-key.pem` (cfssl,
/// kubespray, kubeasz), `x.key` (kubeadm), and the certificate file itself (a combined PEM).
pub fn key_candidates(cert: &Path) -> Vec<PathBuf> {
    let name = cert
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name
        .strip_suffix(".pem")
        .or_else(|| name.strip_suffix(".crt"))
        .unwrap_or(&name);
    let mut out = vec![
        cert.with_file_name(format!("{stem}-key.pem")),
        cert.with_file_name(format!("{stem}.key")),
    ];
    out.push(cert.to_path_buf());
    out.dedup();
    out
}

fn first_cert(bytes: &[u8]) -> Option<crate::pki::cert::CertInfo> {
    decode(Path::new(""), bytes)
        .items
        .into_iter()
        .find_map(|i| match i {
            Item::Cert { info, .. } => Some(*info),
            _ => None,
        })
}

/// Rebases every file of `plan` whose target differs from both of its recorded states.
pub fn rebase(plan: &mut Plan, read: super::resolve::Read) -> Rebased {
    let mut out = Rebased::default();
    for f in &mut plan.files {
        // A file the bundle adds has no old state to rebase.
        if f.old_sha256.is_empty() {
            continue;
        }
        let Some(current) = read(&f.target) else {
            out.problems.push(format!(
                "{}: --rebase: expected a file the bundle replaces, found none on this node",
                f.target.display()
            ));
            continue;
        };
        let sha = sha256_hex(&current);
        if sha == f.old_sha256 || sha == f.new_sha256 {
            continue;
        }
        if f.kind != "certificate" {
            out.problems.push(format!(
                "{}: --rebase: the {} changed since the bundle was made (SHA-256 {sha}), and only certificates can be rebased (their key is checked); make the bundle from this node's file",
                f.target.display(),
                f.kind
            ));
            continue;
        }
        let Some(new) = read(&f.source).and_then(|b| first_cert(&b)) else {
            out.problems.push(format!(
                "{}: --rebase: the bundle file `{}` holds no certificate",
                f.target.display(),
                f.source.display()
            ));
            continue;
        };
        let Some(old) = first_cert(&current) else {
            out.problems.push(format!(
                "{}: --rebase: expected a certificate on this node, found a file without one",
                f.target.display()
            ));
            continue;
        };
        let candidates = key_candidates(&f.target);
        let paired = candidates.iter().find(|k| {
            read(k).is_some_and(|bytes| {
                decode(Path::new(""), &bytes).items.iter().any(|i| {
                    matches!(i, Item::Key { info, .. } if info.public_key.as_ref() == Some(&new.public_key))
                })
            })
        });
        let Some(key) = paired else {
            out.problems.push(format!(
                "{}: --rebase: the new certificate's key is not on this node (looked in {}): the bundle was made for another key; reissue from this node's certificate",
                f.target.display(),
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        };
        out.rebased.push(format!(
            "{}: rebased onto the node's file (SHA-256 {sha}, serial {}; the bundle was made from {}); the new certificate pairs with {}",
            f.target.display(),
            old.serial,
            f.old_sha256,
            key.display()
        ));
        f.old_sha256 = sha;
        f.old_serial = Some(old.serial.clone());
    }
    out
}
