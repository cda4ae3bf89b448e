//! Items 3 to 11: targets outside the root or not named by the node, writable bundles and
//! state dirs, symlinked targets, `status` after a killed rollback, and targets read with limits.

use super::*;

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
