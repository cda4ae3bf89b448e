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

/// Item 1: `apply` twice (same or another state dir) says "already applied" and changes
/// nothing; `rollback` always reaches the backup of the original files, also an earlier
/// rollout's (kept in `journals/`); a partly new node without the original's backup is refused.
#[test]
fn reapplying_a_bundle_is_already_applied_and_rollback_reaches_the_originals() {
    let n = node();
    let before = tree_digest(&n.pki);
    let state = n.dir.path().join("state");
    let first = n.rollout("apply", &state, &[]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert_eq!(n.pairs_consistent(), 2);
    let journal = std::fs::read(state.join("journal.json")).unwrap();
    let applied = tree_digest(&n.pki);

    // Again, same state dir and another one: exit 0, "already applied", nothing written.
    let other = n.dir.path().join("other-state");
    for st in [&state, &other] {
        let again = n.rollout("apply", st, &[]);
        assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
        assert!(again.stdout.contains("already applied"), "{}", again.stdout);
        assert_eq!(tree_digest(&n.pki), applied);
    }
    assert_eq!(std::fs::read(state.join("journal.json")).unwrap(), journal);
    assert_eq!(backups(&state).len(), 1);
    assert!(!other.join("journal.json").exists() && backups(&other).is_empty());
    let json = n.rollout("apply", &state, &["-o", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    assert_eq!(json.json()["outcome"], "already-applied");

    // The first backup, named explicitly, is the recorded one: the originals come back.
    let first_backup = backups(&state)[0].clone();
    let back = n.rollout("rollback", &state, &[&s(&first_backup)]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(tree_digest(&n.pki), before);

    // A second rollout replaces journal.json; the first is kept and still reachable.
    let second = n.rollout("apply", &state, &[]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert_eq!(backups(&state).len(), 2);
    assert!(state.join("journals").read_dir().unwrap().count() >= 1);
    let back = n.rollout("rollback", &state, &[&s(&first_backup)]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(tree_digest(&n.pki), before);
    // A backup that belongs to no rollout of this state dir: one line, exit 2.
    let stray = n.rollout("rollback", &state, &[&s(&n.dir.path().join("nope"))]);
    assert_eq!(stray.code, 2, "{}", stray.stderr);
    assert_eq!(stray.stderr.lines().count(), 1, "{}", stray.stderr);

    // One pair new, the other old, and no backup of the original in this state dir (the
    // rollout that did it used another): refused, one line, nothing touched.
    for name in [PAIRS[0].0, PAIRS[0].1] {
        std::fs::copy(n.bundle.join(name), n.pki.join(name)).unwrap();
    }
    let partial = tree_digest(&n.pki);
    let third = n.dir.path().join("third-state");
    let refused = n.rollout("apply", &third, &[]);
    assert_eq!(refused.code, 2, "{}{}", refused.stdout, refused.stderr);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("interrupted elsewhere"),
        "{}",
        refused.stderr
    );
    assert_eq!(tree_digest(&n.pki), partial);
    assert!(!third.join("journal.json").exists());
    // In the state dir that holds the originals, the same apply backs up the originals.
    let fourth = n.rollout("apply", &state, &[]);
    assert_eq!(fourth.code, 0, "{}{}", fourth.stdout, fourth.stderr);
    assert_eq!(n.pairs_consistent(), 2);
    let back = n.rollout("rollback", &state, &[]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(
        tree_digest(&n.pki),
        before,
        "the originals, not the new files"
    );
}

/// Rewrites the journal of `state` as if the run had been killed with `outcome` and `steps`.
fn set_journal(state: &Path, outcome: &str, steps: &[&str]) {
    let p = state.join("journal.json");
    let mut j: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    j["outcome"] = outcome.into();
    j["steps"] = steps.to_vec().into();
    std::fs::write(&p, serde_json::to_vec_pretty(&j).unwrap()).unwrap();
}

/// Item 2: a rollout interrupted while Swapping, a bundle file (then a backup file) replaced
/// with garbage: `resume` and `rollback` refuse with one line and touch nothing; with the
/// files put back they finish.
#[test]
fn resume_and_rollback_refuse_a_bundle_or_backup_file_changed_since() {
    let n = node();
    let before = tree_digest(&n.pki);
    let state = n.dir.path().join("state");
    let run = n.rollout("apply", &state, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Killed while Swapping, before any rename: the node is as it was.
    let backup = backups(&state)[0].clone();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    for e in manifest.as_array().unwrap() {
        std::fs::copy(e["file"].as_str().unwrap(), e["target"].as_str().unwrap()).unwrap();
    }
    assert_eq!(tree_digest(&n.pki), before);
    set_journal(&state, "running", &["swapping"]);
    let journal = std::fs::read(state.join("journal.json")).unwrap();

    let refused = |verb: &str, path: &Path| {
        let r = n.rollout(verb, &state, &[]);
        assert_eq!(r.code, 2, "{verb}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{verb}: {}", r.stderr);
        assert!(
            r.stderr.contains(&s(path)) && r.stderr.contains("SHA-256"),
            "{verb}: {}",
            r.stderr
        );
        assert_eq!(tree_digest(&n.pki), before, "{verb} changed the node");
        assert_eq!(
            std::fs::read(state.join("journal.json")).unwrap(),
            journal,
            "{verb} changed the journal"
        );
    };
    // A bundle file replaced: resume refuses.
    let key = n.bundle.join(PAIRS[1].1);
    let good = std::fs::read(&key).unwrap();
    std::fs::write(&key, b"garbage").unwrap();
    refused("resume", &key);
    std::fs::write(&key, &good).unwrap();
    // A backup file replaced: resume (a failed gate would restore it) and rollback refuse.
    let saved = std::path::PathBuf::from(manifest[0]["file"].as_str().unwrap());
    let original = std::fs::read(&saved).unwrap();
    std::fs::write(&saved, b"garbage").unwrap();
    refused("resume", &saved);
    refused("rollback", &saved);
    std::fs::write(&saved, &original).unwrap();

    let resumed = n.rollout("resume", &state, &[]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert_eq!(n.pairs_consistent(), 2);
    let back = n.rollout("rollback", &state, &[]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(tree_digest(&n.pki), before);
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Item 3: a target that climbs out of `--root` (`..` in bundle.json, or a symlink on the node)
/// is refused before anything is written, though its `old_sha256` matches; so are a bundle
/// directory or file, and a state directory, that group or others can write.
#[test]
fn a_target_inside_the_root_that_the_node_does_not_name_is_refused_unless_vouched_for() {
    // Issue 12 item 3: inside --root is not enough. A bundle entry pointed at `etc/passwd`
    // with a matching old hash (the victim holds the bytes the entry was made from) must be
    // refused: no PKI location, config location or component of the node names that file.
    let n = node();
    let state = n.dir.path().join("state");
    let node_before = tree_digest(&n.pki);
    let victim = n.root.join("etc/passwd");
    std::fs::copy(n.pki.join(PAIRS[1].0), &victim).unwrap();
    let victim_before = std::fs::read(&victim).unwrap();
    let manifest_path = n.bundle.join("bundle.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let entry = m["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["bundle_path"] == PAIRS[1].0)
        .unwrap();
    entry["target"] = s(&victim).into();
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    for verb in ["plan", "apply"] {
        let r = n.rollout(verb, &state, &[]);
        assert_eq!(r.code, 2, "{verb}: {}{}", r.stdout, r.stderr);
        let lines: Vec<&str> = r
            .stderr
            .lines()
            .filter(|l| l.contains("found none that names it"))
            .collect();
        assert_eq!(lines.len(), 1, "{verb}: {}", r.stderr);
        assert!(lines[0].contains("etc/passwd") && lines[0].contains("--allow-dir"));
        assert_eq!(std::fs::read(&victim).unwrap(), victim_before, "{verb}");
        assert_eq!(tree_digest(&n.pki), node_before, "{verb}");
        assert!(!state.join("journal.json").exists(), "{verb}");
    }
    // The operator may vouch for a directory the node does not name.
    let etc = s(&n.root.join("etc"));
    let r = n.rollout("plan", &state, &["--allow-dir", &etc]);
    assert!(
        !r.stderr.contains("found none that names it"),
        "{}{}",
        r.stdout,
        r.stderr
    );
}

#[test]
fn targets_outside_the_root_and_writable_bundles_or_state_dirs_are_refused() {
    let n = node();
    let state = n.dir.path().join("state");
    let node_before = tree_digest(&n.pki);
    // The victim outside the root has the bytes of the file the bundle was made from.
    let victim = n.dir.path().join("victim");
    std::fs::copy(n.pki.join(PAIRS[1].0), &victim).unwrap();
    let victim_before = std::fs::read(&victim).unwrap();
    let refused_outside = |what: &str| {
        for verb in ["plan", "apply"] {
            let r = n.rollout(verb, &state, &[]);
            assert_eq!(r.code, 2, "{what} {verb}: {}{}", r.stdout, r.stderr);
            assert!(
                r.stderr.contains("outside the root"),
                "{what} {verb}: {}",
                r.stderr
            );
            assert_eq!(std::fs::read(&victim).unwrap(), victim_before, "{what}");
            assert_eq!(tree_digest(&n.pki), node_before, "{what}");
            assert!(!state.join("journal.json").exists(), "{what}");
        }
    };

    // `..` in the target, four levels up from etc/kubernetes/pki: the root's parent.
    let manifest_path = n.bundle.join("bundle.json");
    let manifest = std::fs::read(&manifest_path).unwrap();
    let mut m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let escaping = format!("{}/../../../../victim", s(&n.pki));
    let entry = m["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["bundle_path"] == PAIRS[1].0)
        .unwrap();
    entry["target"] = escaping.into();
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    refused_outside("a `..` target");
    std::fs::write(&manifest_path, &manifest).unwrap();

    // The target on the node is a symlink that climbs out of the root.
    let target = n.pki.join(PAIRS[1].0);
    let original = std::fs::read(&target).unwrap();
    std::fs::remove_file(&target).unwrap();
    std::os::unix::fs::symlink("../../../../victim", &target).unwrap();
    let node_linked = tree_digest(&n.pki);
    for verb in ["plan", "apply"] {
        let r = n.rollout(verb, &state, &[]);
        assert_eq!(r.code, 2, "{verb}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("outside the root"),
            "{verb}: {}",
            r.stderr
        );
        assert_eq!(std::fs::read(&victim).unwrap(), victim_before);
        assert_eq!(tree_digest(&n.pki), node_linked);
    }
    std::fs::remove_file(&target).unwrap();
    std::fs::write(&target, &original).unwrap();

    // Writable by others: the bundle directory, a bundle file, the state directory.
    let one_line = |r: Run, path: &Path, what: &str, node: &[(PathBuf, String)]| {
        assert_eq!(r.code, 2, "{what}: {}{}", r.stdout, r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{what}: {}", r.stderr);
        assert!(
            r.stderr.contains(&s(path)) && r.stderr.contains("group or others can write"),
            "{what}: {}",
            r.stderr
        );
        assert_eq!(tree_digest(&n.pki), node, "{what}");
    };
    chmod(&n.bundle, 0o777);
    one_line(
        n.rollout("apply", &state, &[]),
        &n.bundle,
        "bundle dir 0777",
        &node_before,
    );
    chmod(&n.bundle, 0o700);
    let key = n.bundle.join(PAIRS[0].1);
    chmod(&key, 0o666);
    one_line(
        n.rollout("apply", &state, &[]),
        &key,
        "bundle key 0666",
        &node_before,
    );
    chmod(&key, 0o600);
    std::fs::create_dir(&state).unwrap();
    chmod(&state, 0o775);
    one_line(
        n.rollout("apply", &state, &[]),
        &state,
        "state dir 0775",
        &node_before,
    );
    assert!(!state.join("lock").exists() && !state.join("journal.json").exists());
    chmod(&state, 0o700);
    let ok = n.rollout("apply", &state, &[]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let applied = tree_digest(&n.pki);
    chmod(&state, 0o777);
    one_line(
        n.rollout("rollback", &state, &[]),
        &state,
        "rollback, state dir 0777",
        &applied,
    );
    chmod(&state, 0o700);
    let back = n.rollout("rollback", &state, &[]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(tree_digest(&n.pki), node_before);
}

/// Item 9: a target that is a symlink (kubeadm's `kubelet-client-current.pem` is one), relative
/// or absolute as the node sees it: the file it resolves to is replaced and restored, the link
/// stays a link to the same place.
#[test]
fn a_symlinked_target_is_written_through_and_the_link_is_kept() {
    let n = node();
    let state = n.dir.path().join("state");
    // The certificate: a relative link to a dated file; the key: an absolute link, as the node
    // (mounted at --root) sees it.
    let (crt, key) = (n.pki.join(PAIRS[1].0), n.pki.join(PAIRS[1].1));
    let (crt_real, key_real) = (
        n.pki.join("front-proxy-client-2024.crt"),
        n.pki.join("dated/front-proxy-client-2024.key"),
    );
    std::fs::create_dir(n.pki.join("dated")).unwrap();
    std::fs::rename(&crt, &crt_real).unwrap();
    std::fs::rename(&key, &key_real).unwrap();
    std::os::unix::fs::symlink("front-proxy-client-2024.crt", &crt).unwrap();
    let key_link = Path::new("/etc/kubernetes/pki/dated/front-proxy-client-2024.key");
    std::os::unix::fs::symlink(key_link, &key).unwrap();
    let before = tree_digest(&n.pki);
    let links = || {
        (
            std::fs::read_link(&crt).expect("the certificate is still a link"),
            std::fs::read_link(&key).expect("the key is still a link"),
        )
    };
    let linked = links();

    let plan = n.rollout("plan", &state, &[]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains(&format!(
            "{} (via the symlink {}, kept)",
            s(&crt_real),
            s(&crt)
        )),
        "{}",
        plan.stdout
    );
    let run = n.rollout("apply", &state, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(links(), linked);
    assert_eq!(
        std::fs::read(&crt_real).unwrap(),
        std::fs::read(n.bundle.join(PAIRS[1].0)).unwrap()
    );
    assert_eq!(
        std::fs::read(&key_real).unwrap(),
        std::fs::read(n.bundle.join(PAIRS[1].1)).unwrap()
    );
    assert_eq!(n.pairs_consistent(), 2);
    let back = n.rollout("rollback", &state, &[]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(links(), linked);
    assert_eq!(tree_digest(&n.pki), before);
    assert_eq!(n.pairs_consistent(), 0);
}

/// Item 10: `status` compares the files with the journal's hashes. A rollback killed midway
/// that left a certificate old and its key new is never "Done" with exit 0 (neither with a
/// journal that still says Done, as one written before the rollback marked itself, nor with
/// the `rolling-back` mark); a live run (lock held) is "in progress", not "interrupted".
#[test]
fn status_tells_the_truth_after_a_rollback_killed_midway_and_during_a_live_rollout() {
    let n = node();
    let state = n.dir.path().join("state");
    let run = n.rollout("apply", &state, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let ok = n.rollout("status", &state, &[]);
    assert_eq!(ok.code, 0, "{}", ok.stdout);
    assert!(
        ok.stdout.contains("files-only: Healthy (files: new)"),
        "{}",
        ok.stdout
    );

    // The rollback restored the certificate, then died: key still new.
    let backup = backups(&state)[0].clone();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    let cert_entry = manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"].as_str().unwrap().ends_with(PAIRS[0].0))
        .unwrap();
    std::fs::copy(
        cert_entry["file"].as_str().unwrap(),
        cert_entry["target"].as_str().unwrap(),
    )
    .unwrap();
    for (outcome, says) in [
        ("done", "do not match the recorded Done"),
        ("rolling-back", "interrupted during a rollback"),
    ] {
        set_journal(&state, outcome, &["healthy"]);
        let st = n.rollout("status", &state, &[]);
        assert_eq!(st.code, 1, "{outcome}: {}{}", st.stdout, st.stderr);
        assert!(st.stdout.contains(says), "{outcome}: {}", st.stdout);
        assert!(
            st.stdout.contains(&format!("{} old", PAIRS[0].0))
                && st.stdout.contains(&format!("{} new", PAIRS[0].1)),
            "{outcome}: {}",
            st.stdout
        );
        let js = n.rollout("status", &state, &["-o", "json"]);
        assert_eq!(js.code, 1, "{outcome}");
        let v = js.json();
        assert!(!v["contradictions"].as_array().unwrap().is_empty(), "{v}");
        assert_eq!(v["in_progress"], false);
    }
    // `resume` finishes the interrupted rollback; status agrees afterwards.
    let resumed = n.rollout("resume", &state, &[]);
    assert_eq!(resumed.code, 0, "{}{}", resumed.stdout, resumed.stderr);
    assert!(resumed.stdout.contains("rolled back"), "{}", resumed.stdout);
    assert_eq!(n.pairs_consistent(), 0);
    let st = n.rollout("status", &state, &[]);
    assert_eq!(st.code, 3, "{}", st.stdout);
    assert!(!st.stdout.contains("do not match"), "{}", st.stdout);

    // A live run: the journal says running and another process holds the lock.
    set_journal(&state, "running", &["swapping"]);
    let held = certs::sys::fs::lock(&state.join("lock")).unwrap();
    let live = n.rollout("status", &state, &[]);
    assert_eq!(live.code, 1, "{}", live.stdout);
    assert!(live.stdout.contains("in progress"), "{}", live.stdout);
    assert!(!live.stdout.contains("interrupted"), "{}", live.stdout);
    assert_eq!(
        n.rollout("status", &state, &["-o", "json"]).json()["in_progress"],
        true
    );
    drop(held);
    let after = n.rollout("status", &state, &[]);
    assert!(after.stdout.contains("interrupted"), "{}", after.stdout);
    assert!(!after.stdout.contains("in progress"), "{}", after.stdout);
}

/// Item 11: a target that is a FIFO (or a link to one), a directory, or a file over 1 MiB is
/// refused at once (never opened, never read whole) with the lock free afterwards; the lock is
/// released on an error after it was taken; a relative `--state-dir` is stored absolute, so a
/// rollback from another directory finds the backup.
#[test]
fn apply_reads_targets_with_limits_and_a_relative_state_dir_is_stored_absolute() {
    use std::time::{Duration, Instant};
    let n = node();
    let state = n.dir.path().join("state");
    let before = tree_digest(&n.pki);
    let target = n.pki.join(PAIRS[1].0);
    let original = std::fs::read(&target).unwrap();
    let fifo = n.pki.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let refused = |what: &str, words: &str| {
        let t = Instant::now();
        let r = n.rollout("apply", &state, &[]);
        assert!(t.elapsed() < Duration::from_secs(20), "{what}: waited");
        assert_eq!(r.code, 2, "{what}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(words), "{what}: {}", r.stderr);
        assert!(!state.join("journal.json").exists(), "{what}");
        // Nobody holds the lock.
        std::fs::create_dir_all(&state).unwrap();
        drop(certs::sys::fs::lock(&state.join("lock")).expect(what));
    };
    std::fs::remove_file(&target).unwrap();
    std::fs::rename(&fifo, &target).unwrap();
    refused("a FIFO", "found a FIFO");
    std::fs::rename(&target, &fifo).unwrap();
    std::os::unix::fs::symlink("fifo", &target).unwrap();
    refused("a link to a FIFO", "found a FIFO");
    std::fs::remove_file(&target).unwrap();
    std::fs::create_dir(&target).unwrap();
    refused("a directory", "found a directory");
    std::fs::remove_dir(&target).unwrap();
    let big = std::fs::File::create(&target).unwrap();
    big.set_len(2 << 20).unwrap();
    drop(big);
    refused("a 2 MiB file", "at most 1048576 bytes");
    std::fs::write(&target, &original).unwrap();
    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(tree_digest(&n.pki), before);

    // An error after the lock was taken (an interrupted rollout recorded) releases it.
    let run = n.rollout("apply", &state, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    set_journal(&state, "running", &["swapped"]);
    let again = n.rollout("apply", &state, &[]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("interrupted"), "{}", again.stderr);
    drop(certs::sys::fs::lock(&state.join("lock")).expect("released"));
    set_journal(&state, "done", &["healthy"]);
    let back = n.rollout("rollback", &state, &[]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);

    // A relative --state-dir, then a rollback from elsewhere with the absolute path.
    let cwd = n.dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let mut args: Vec<String> = ["rollout", "apply", &s(&n.bundle), "--root", &s(&n.root)]
        .map(String::from)
        .to_vec();
    args.extend(["--profile".into(), s(&n.profile)]);
    args.extend(["--state-dir".into(), "rel-state".into()]);
    let rel = crate::util::certs_in(&cwd, &args);
    assert_eq!(rel.code, 0, "{}{}", rel.stdout, rel.stderr);
    let abs_state = cwd.join("rel-state");
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(abs_state.join("journal.json")).unwrap()).unwrap();
    assert!(
        Path::new(j["backup"].as_str().unwrap()).is_absolute(),
        "{}",
        j["backup"]
    );
    let back = crate::util::certs_in(
        n.dir.path(),
        ["rollout", "rollback", "--state-dir", &s(&abs_state)],
    );
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(tree_digest(&n.pki), before);
}

mod killed {
    //! A kill -9 at every journal transition (and before every staged write, rename and
    //! restart) of `apply`, `resume` and `rollback`, on the node's real plan split in two steps:
    //! each runs in a child process (this test binary) that SIGKILLs itself at the fault point,
    //! so nothing after it runs, no destructor either, and the files and the journal stay as they
    //! are at that instant. After each, `status` from the binary must tell the
    //! truth, and `resume` or `rollback` from the binary must leave every certificate/key pair
    //! all-old or all-new and pairing.

    use super::*;
    use certs::rollout::exec::{Event, Executor, Prober, Restarter, Timing};
    use certs::rollout::plan::{Gate, Plan};
    use certs::rollout::profile::Restart;
    use std::cell::Cell;
    use std::time::Duration;

    struct Ok_;
    impl Restarter for Ok_ {
        fn restart(&self, _: &Restart) -> std::result::Result<(), certs::rollout::Error> {
            Ok(())
        }
    }
    impl Prober for Ok_ {
        fn check(
            &self,
            _: &Gate,
            _: Option<&str>,
        ) -> std::result::Result<(), certs::rollout::Error> {
            Ok(())
        }
    }

    /// The plan `rollout plan -o json` makes, its files-only step split into one step per pair,
    /// each restarted with `true`.
    fn plan(n: &Node) -> Plan {
        let r = n.rollout("plan", Path::new("-"), &["-o", "json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut plan: Plan = serde_json::from_str(&r.stdout).unwrap();
        let one = plan.steps[0].clone();
        let pair = |crt: &str| -> Vec<usize> {
            let stem = crt.trim_end_matches(".crt");
            (0..plan.files.len())
                .filter(|&i| plan.files[i].target.file_stem().is_some_and(|s| s == stem))
                .collect()
        };
        plan.steps = PAIRS
            .iter()
            .map(|(crt, _)| {
                let mut s = one.clone();
                s.component = crt.trim_end_matches(".crt").into();
                s.files = pair(crt);
                s.restart = Some(Restart::Command("true".into()));
                s.note = None;
                s
            })
            .collect();
        plan
    }

    /// One executor operation, by name so that a child process can run it.
    #[derive(Clone, Copy)]
    enum Op {
        Apply,
        Resume,
        Rollback,
    }

    impl Op {
        fn name(self) -> &'static str {
            match self {
                Op::Apply => "apply",
                Op::Resume => "resume",
                Op::Rollback => "rollback",
            }
        }

        fn run(
            self,
            ex: &mut Executor,
            plan: &Plan,
        ) -> certs::error::Result<certs::rollout::exec::Ended> {
            match self {
                Op::Apply => ex.apply(plan),
                Op::Resume => ex.resume(),
                Op::Rollback => ex.rollback(None),
            }
        }
    }

    /// Runs `op` on an executor over `state` with `fault` at every fault point.
    fn execute(
        state: &Path,
        plan: &Plan,
        op: Op,
        fault: &dyn Fn(&str) -> Result<(), certs::rollout::Error>,
    ) {
        let mut sink = |_: &Event| {};
        let mut ex = Executor {
            state_dir: state.to_path_buf(),
            restarter: &Ok_,
            prober: &Ok_,
            timing: Timing {
                deadline: Duration::from_millis(50),
                interval: Duration::from_millis(10),
            },
            now: &|| 1_800_000_000,
            on_event: &mut sink,
            fault,
            etcd: &certs::rollout::membership::NoEtcd,
        };
        op.run(&mut ex, plan).unwrap();
    }

    /// Runs `op` over `state` to its end, in this process: how many fault points it passed.
    fn points(state: &Path, plan: &Plan, op: Op) -> usize {
        let calls = Cell::new(0);
        execute(state, plan, op, &|_| {
            calls.set(calls.get() + 1);
            Ok(())
        });
        calls.get()
    }

    /// Runs `op` over `state` in a child process (this test binary, [`kill_child`]) that
    /// SIGKILLs itself (`kill -9`) at its `k`-th fault point: no destructor, no unwinding,
    /// the files and the journal exactly as they are at that instant.
    fn kill(state: &Path, plan_file: &Path, op: Op, k: usize) {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "rollout_hardening::killed::kill_child",
                "--ignored",
                "--nocapture",
            ])
            .env("CERTS_KILL_STATE", state)
            .env("CERTS_KILL_PLAN", plan_file)
            .env("CERTS_KILL_OP", op.name())
            .env("CERTS_KILL_AT", k.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "{} killed at {k}: {status:?}",
            op.name()
        );
    }

    /// The child [`kill`] runs: only with its environment set (skipped otherwise).
    #[test]
    #[ignore = "run by the kill test in a child process"]
    fn kill_child() {
        let Ok(state) = std::env::var("CERTS_KILL_STATE") else {
            return;
        };
        let plan: Plan = serde_json::from_slice(
            &std::fs::read(std::env::var("CERTS_KILL_PLAN").unwrap()).unwrap(),
        )
        .unwrap();
        let op = match std::env::var("CERTS_KILL_OP").unwrap().as_str() {
            "apply" => Op::Apply,
            "resume" => Op::Resume,
            _ => Op::Rollback,
        };
        let at: usize = std::env::var("CERTS_KILL_AT").unwrap().parse().unwrap();
        let calls = Cell::new(0);
        execute(Path::new(&state), &plan, op, &|_| {
            if calls.get() == at {
                // The shell's own `kill` (no procps needed): its parent is this process.
                let _ = std::process::Command::new("sh")
                    .args(["-c", "kill -9 $PPID"])
                    .status();
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            calls.set(calls.get() + 1);
            Ok(())
        });
        panic!("{} ended before its fault point {at}", op.name());
    }

    /// The node back as it was, a fresh state dir.
    fn reset(n: &Node, original: &[(PathBuf, Vec<u8>)], state: &Path) {
        let _ = std::fs::remove_dir_all(state);
        std::fs::create_dir(state).unwrap();
        for (p, b) in original {
            std::fs::write(p, b).unwrap();
        }
        for e in std::fs::read_dir(&n.pki).unwrap() {
            let p = e.unwrap().path();
            if p.to_string_lossy().ends_with(".certs-tmp") {
                std::fs::remove_file(p).unwrap();
            }
        }
    }

    /// After a kill: `status` tells the truth (exit 0 only with every pair new, a mixed pair
    /// named), then `verb` from the binary ends with every pair all-old or all-new.
    fn recover(n: &Node, state: &Path, verb: &str, what: &str) {
        let st = n.rollout("status", state, &[]);
        let mixed = PAIRS.iter().any(|(crt, key)| {
            let is_new = |name: &str| {
                std::fs::read(n.pki.join(name)).unwrap()
                    == std::fs::read(n.bundle.join(name)).unwrap()
            };
            is_new(crt) != is_new(key)
        });
        assert!(!st.stdout.contains("in progress"), "{what}: {}", st.stdout);
        if st.stdout.contains("no rollout recorded") {
            // Killed before the first journal write: nothing was changed.
            assert_eq!(st.code, 0);
            assert_eq!(n.pairs_consistent(), 0, "{what}: no journal, files changed");
            let r = n.rollout(verb, state, &[]);
            assert_eq!(r.code, 2, "{what}: {verb}: {}{}", r.stdout, r.stderr);
            return;
        }
        if mixed {
            assert_ne!(
                st.code, 0,
                "{what}: a mixed pair, status exit 0\n{}",
                st.stdout
            );
            assert!(st.stdout.contains("old but"), "{what}: {}", st.stdout);
        }
        if st.code == 0 {
            assert_eq!(n.pairs_consistent(), 2, "{what}: status 0\n{}", st.stdout);
        }
        let r = n.rollout(verb, state, &[]);
        let done = r.code == 0
            // Killed before a rollback changed anything: the rollout is still Done.
            || (verb == "resume" && r.code == 2 && st.code == 0);
        assert!(done, "{what}: {verb}: {}{}", r.stdout, r.stderr);
        let new = n.pairs_consistent();
        // rollback, or a resume that finished an interrupted rollback: every pair old.
        let rolled_back = verb == "rollback" || (r.code == 0 && r.stdout.contains("rolled back"));
        let want = if rolled_back { 0 } else { 2 };
        assert_eq!(new, want, "{what}: {verb}: {}", r.stdout);
        let after = n.rollout("status", state, &[]);
        assert_eq!(
            after.code,
            if want == 0 { 3 } else { 0 },
            "{what}: status after {verb}: {}",
            after.stdout
        );
    }

    #[test]
    fn a_kill_at_every_journal_transition_of_apply_resume_and_rollback_is_recovered() {
        let n = node();
        let state = n.dir.path().join("state");
        let original: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&n.pki)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .map(|p| {
                let b = std::fs::read(&p).unwrap();
                (p, b)
            })
            .collect();
        let plan = plan(&n);
        let plan_file = n.dir.path().join("plan.json");
        std::fs::write(&plan_file, serde_json::to_vec(&plan).unwrap()).unwrap();
        reset(&n, &original, &state);
        let apply_points = points(&state, &plan, Op::Apply);
        assert!(apply_points >= 10, "{apply_points} points");
        let mut kills = 0;
        for verb in ["resume", "rollback"] {
            // apply, killed at each point.
            for k in 0..apply_points {
                reset(&n, &original, &state);
                kill(&state, &plan_file, Op::Apply, k);
                recover(&n, &state, verb, &format!("apply killed at {k}"));
                kills += 1;
            }
            // resume of an apply killed in the second step, killed at each point.
            let mid = apply_points - 4;
            reset(&n, &original, &state);
            kill(&state, &plan_file, Op::Apply, mid);
            let resume_points = points(&state, &plan, Op::Resume);
            for k in 0..resume_points {
                reset(&n, &original, &state);
                kill(&state, &plan_file, Op::Apply, mid);
                kill(&state, &plan_file, Op::Resume, k);
                recover(&n, &state, verb, &format!("resume killed at {k}"));
                kills += 1;
            }
            // rollback of a done rollout, killed at each point.
            reset(&n, &original, &state);
            points(&state, &plan, Op::Apply);
            let rollback_points = points(&state, &plan, Op::Rollback);
            assert!(rollback_points >= 3, "{rollback_points} rollback points");
            for k in 0..rollback_points {
                reset(&n, &original, &state);
                points(&state, &plan, Op::Apply);
                kill(&state, &plan_file, Op::Rollback, k);
                recover(&n, &state, verb, &format!("rollback killed at {k}"));
                kills += 1;
            }
        }
        eprintln!("{kills} kills recovered");
    }
}
