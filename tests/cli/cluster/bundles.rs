//! Bundles made by `certs change --root A` installed on a copy B of the nodes: rerooted and
//! rebased.

use super::*;

/// A bundle made by `certs change --root A` installs on a copy B of the node (`--root B`), its
/// targets re-rooted; one made from other files is refused, and `--rebase` installs it onto a
/// node whose certificate changed since when the new certificate pairs with its key.
#[test]
fn bundles_reroot_and_rebase() {
    let made = fixture("etcd-loopback");
    let a = made.path();
    crate::etcd::write_node_root(&a.join("node"), 1, Form::Env, &a.join(NODE_PKI));
    let node_a = a.join("node");
    let bin = a.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    write_exec(&bin.join("systemctl"), "#!/bin/sh\nexit 0\n");
    let bundle = a.join("bundle");
    let path = format!("{}:{}", s(&bin), std::env::var("PATH").unwrap());
    let run = crate::util::certs_env(
        [
            "change",
            "--root",
            &s(&node_a),
            "--retire",
            "etcd3",
            "--offline",
            "--out",
            &s(&bundle),
            "--state-dir",
            &s(&a.join("state")),
        ],
        &[("PATH", path.as_str())],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["root"], s(&node_a));

    // Node B: a copy of A elsewhere. The plan targets B's files.
    let b = tempfile::tempdir().unwrap();
    let node_b = b.path().join("node");
    Command::new("cp")
        .args(["-a", &s(&node_a), &s(&node_b)])
        .status()
        .unwrap();
    let plan = |extra: &[&str]| {
        let mut argv = vec![
            "rollout".to_string(),
            "plan".into(),
            s(&bundle),
            "--root".into(),
            s(&node_b),
            "--no-etcd-membership".into(),
            "-o".into(),
            "json".into(),
        ];
        argv.extend(extra.iter().map(|x| x.to_string()));
        crate::util::certs_env(&argv, &[("PATH", path.as_str())])
    };
    let run = plan(&[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let targets: Vec<String> = run.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["target"].as_str().unwrap().to_string())
        .collect();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| t.starts_with(&s(&node_b))),
        "{targets:?}"
    );

    // B's member certificate renewed since (same key, new serial): the apply refuses it...
    let member = node_b.join(NODE_PKI).join("member-etcd1.pem");
    let ca = node_b.join(NODE_PKI).join("ca.pem");
    let ca_key = a.join(NODE_PKI).join("ca-key.pem");
    let renewed = b.path().join("renewed");
    let run = certs([
        "renew",
        &s(&member),
        "--ca",
        &s(&ca),
        "--ca-key",
        &s(&ca_key),
        "--all",
        "--out",
        &s(&renewed),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let renewed_pem = walkdir::WalkDir::new(&renewed)
        .into_iter()
        .flatten()
        .find(|e| e.file_name() == "member-etcd1.pem")
        .unwrap();
    std::fs::copy(renewed_pem.path(), &member).unwrap();
    let before = tree_digest(&node_b);
    let apply = |extra: &[&str]| {
        let mut argv = vec![
            "rollout".to_string(),
            "apply".into(),
            s(&bundle),
            "--root".into(),
            s(&node_b),
            "--no-etcd-membership".into(),
            "--dry-run".into(),
        ];
        argv.extend(extra.iter().map(|x| x.to_string()));
        crate::util::certs_env(&argv, &[("PATH", path.as_str())])
    };
    // (--dry-run proves the plan; the executor's own check refuses the changed file.)
    let run = crate::util::certs_env(
        [
            "rollout",
            "apply",
            &s(&bundle),
            "--root",
            &s(&node_b),
            "--no-etcd-membership",
            "--state-dir",
            &s(&b.path().join("state")),
            "--restart-cmd",
            "etcd=true",
            "--health",
            "etcd=https://127.0.0.1:1/health",
        ],
        &[("PATH", path.as_str())],
    );
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("member-etcd1.pem")
            && run.stderr.contains("the file the bundle was made from"),
        "{}",
        run.stderr
    );
    assert_eq!(
        tree_digest(&node_b),
        before,
        "a refused apply changed the node"
    );
    // ... and --rebase takes it: the plan records B's file as the one it replaces.
    let run = plan(&["--rebase"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let sha = openssl(["dgst", "-sha256", "-r", &s(&member)]);
    let sha = sha.split_whitespace().next().unwrap();
    let entry = run.json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == s(&member))
        .cloned()
        .unwrap();
    assert_eq!(entry["old_sha256"], sha);
    let serial = x509(&member, "-serial");
    assert_eq!(
        entry["old_serial"]
            .as_str()
            .unwrap()
            .to_uppercase()
            .replace(':', ""),
        serial.trim().trim_start_matches("serial=")
    );
    assert!(apply(&["--rebase"]).code == 0);

    // A certificate with another key on B: refused even with --rebase, one line naming it.
    let other_key = b.path().join("other.key");
    openssl(["genrsa", "-out", &s(&other_key), "2048"]);
    std::fs::copy(
        &other_key,
        node_b.join(NODE_PKI).join("member-etcd1-key.pem"),
    )
    .unwrap();
    let run = plan(&["--rebase"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("member-etcd1.pem: --rebase: the new certificate's key is not on this node"),
        "{}",
        run.stderr
    );
    // A configuration file changed since: refused with --rebase too.
    let env = node_b.join("etc/etcd.env");
    let mut text = std::fs::read_to_string(&env).unwrap();
    text.push_str("# edited by hand\n");
    std::fs::write(&env, text).unwrap();
    let run = plan(&["--rebase"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("etcd.env: --rebase: the config changed since the bundle was made"),
        "{}",
        run.stderr
    );
}
