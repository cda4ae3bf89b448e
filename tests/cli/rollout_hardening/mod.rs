//! `certs rollout` under adversarial conditions (issue 12): re-running `apply`, bundles and
//! backups changed behind its back, targets outside `--root`, symlinked targets, special files,
//! a `status` after a rollback killed midway, and a kill at every journal transition of
//! `apply`, `resume` and `rollback`.
//!
//! The node is a flat copy of kubeadm's PKI directory (no manifests, no units) and the profile
//! has no component, so every file is swapped without a restart: what is tested is the file
//! handling, the journal and the backups, with real certificate/key pairs.

use std::path::{Path, PathBuf};

use crate::util::{certs, openssl, repo, s, tree_digest, Run};

mod journal;
mod killed;
mod targets;

/// A node under `root`, a bundle reissuing two client certificates with new keys, and an
/// empty profile.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub pki: PathBuf,
    pub bundle: PathBuf,
    pub profile: PathBuf,
}

/// The two certificate/key pairs the bundle replaces.
pub const PAIRS: [(&str, &str); 2] = [
    ("apiserver-etcd-client.crt", "apiserver-etcd-client.key"),
    ("front-proxy-client.crt", "front-proxy-client.key"),
];

pub fn node() -> Node {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let pki = root.join("etc/kubernetes/pki");
    std::fs::create_dir_all(pki.join("etcd")).unwrap();
    let from = repo().join("fixtures/kubeadm/etc/kubernetes/pki");
    for name in [
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "etcd/ca.crt",
        "etcd/ca.key",
        PAIRS[0].0,
        PAIRS[0].1,
        PAIRS[1].0,
        PAIRS[1].1,
    ] {
        std::fs::copy(from.join(name), pki.join(name)).unwrap();
        if name.ends_with(".key") {
            std::fs::set_permissions(pki.join(name), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
    }
    let bundle = dir.path().join("bundle");
    let run = certs([
        "reissue",
        &s(&pki.join(PAIRS[0].0)),
        &s(&pki.join(PAIRS[1].0)),
        "--new-key",
        "--out",
        &s(&bundle),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let profile = dir.path().join("profile.json");
    std::fs::write(&profile, r#"{"name": "flat", "components": []}"#).unwrap();
    Node {
        dir,
        root,
        pki,
        bundle,
        profile,
    }
}

impl Node {
    /// `certs rollout VERB [BUNDLE --root --profile] --state-dir STATE EXTRA…`
    pub fn rollout(&self, verb: &str, state: &Path, extra: &[&str]) -> Run {
        let mut args = vec!["rollout".to_string(), verb.into()];
        if matches!(verb, "apply" | "plan") {
            args.extend([
                s(&self.bundle),
                "--root".into(),
                s(&self.root),
                "--profile".into(),
                s(&self.profile),
            ]);
        }
        if verb != "plan" {
            args.extend(["--state-dir".into(), s(state)]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        certs(&args)
    }

    /// Every pair on the node: both old or both new (as the bundle says), and pairing.
    /// Returns how many pairs are new.
    pub fn pairs_consistent(&self) -> usize {
        let mut new = 0;
        // Through symlinks as the node sees them (an absolute link is under --root).
        let on_node =
            |name: &str| certs::sys::fs::resolve_in_root(&self.root, &self.pki.join(name)).unwrap();
        for (crt, key) in PAIRS {
            let at = |name: &str| {
                let now = std::fs::read(on_node(name)).unwrap();
                let fresh = std::fs::read(self.bundle.join(name)).unwrap();
                now == fresh
            };
            assert_eq!(
                at(crt),
                at(key),
                "{crt} and {key}: one old, one new\n{}",
                self.status_text()
            );
            let from_cert = openssl(["x509", "-noout", "-pubkey", "-in", &s(&on_node(crt))]);
            let from_key = openssl(["pkey", "-pubout", "-in", &s(&on_node(key))]);
            assert_eq!(from_cert, from_key, "{crt} does not pair with {key}");
            new += usize::from(at(crt));
        }
        new
    }

    fn status_text(&self) -> String {
        let r = self.rollout("status", &self.dir.path().join("state"), &[]);
        format!("{}{}", r.stdout, r.stderr)
    }
}

fn backups(state: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(state.join("backups"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// Rewrites the journal of `state` as if the run had been killed with `outcome` and `steps`.
fn set_journal(state: &Path, outcome: &str, steps: &[&str]) {
    let p = state.join("journal.json");
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    j["outcome"] = outcome.into();
    j["steps"] = steps.to_vec().into();
    std::fs::write(&p, serde_json::to_vec_pretty(&j).unwrap()).unwrap();
}
