//! Items 1 and 2: reapplying a bundle is "already applied", rollback reaches the backups,
//! and resume/rollback refuse a bundle or backup file changed since.

use super::*;

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
