//! `certs renew` on copies of the layout fixtures: exactly the leaves due at a pinned `--now` are
//! reissued (subject, SANs and key kept, checked with openssl against their CA), kubeconfig
//! client certificates with them, a leaf whose CA key is not on the node refused while the
//! others go on, nothing written when nothing is due, and the bundle accepted by
//! `certs rollout plan`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{certs, certs_env, fixture, openssl, path_with, s, tree_digest};

/// The kubeadm fixture's leaves end 2034-12-31T00:00:00Z and its CAs 2035-01-01T00:00:00Z:
/// at this instant every leaf expires within 30 days, none within 10.
const YEAR_END: &str = "2034-12-20T00:00:00Z";
const YEAR_END_EPOCH: &str = "2050185600";

/// Replaces `rel` under `node` with itself reissued at `at` for `validity`: a leaf that ends
/// earlier than the others.
fn shorten(node: &Path, rel: &str, at: &str, validity: &str) {
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("b");
    let run = certs([
        "reissue",
        &s(&node.join(rel)),
        "--now",
        at,
        "--validity",
        validity,
        "--out",
        &s(&out),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let name = Path::new(rel).file_name().unwrap();
    std::fs::copy(out.join(name), node.join(rel)).unwrap();
}

/// A PATH dir whose `systemctl` only records that it ran (planning must not run it).
fn fake_systemctl(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("systemctl");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\n",
            s(&dir.join("systemctl-ran"))
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `certs rollout plan BUNDLE --root NODE -o json`, which must accept the bundle.
fn plan(bundle: &Path, node: &Path) -> Value {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let bin = fake_systemctl(work);
    let run = certs_env(
        [
            "rollout",
            "plan",
            &s(bundle),
            "--root",
            &s(node),
            "-o",
            "json",
        ],
        &[("PATH", path_with(&bin))],
    );
    assert_eq!(run.code, 0, "rollout plan: {}{}", run.stdout, run.stderr);
    assert!(
        !work.join("systemctl-ran").exists(),
        "planning ran systemctl"
    );
    run.json()
}

fn renew_json(args: &[String]) -> (crate::util::Run, Value) {
    let mut all = vec!["renew".to_string()];
    all.extend(args.iter().cloned());
    all.extend(["-o".to_string(), "json".to_string()]);
    let run = certs(&all);
    let doc = run.json();
    assert_eq!(doc["schema"], "certs.renew/v1");
    (run, doc)
}

/// `target` or `target (user)` of every file with `action`.
fn with_action(doc: &Value, action: &str) -> BTreeSet<String> {
    doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == action)
        .map(|f| match f["user"].as_str() {
            Some(u) => format!("{} ({u})", f["target"].as_str().unwrap()),
            None => f["target"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn names(node: &Path, rels: &[&str]) -> BTreeSet<String> {
    rels.iter()
        .map(|r| {
            let (path, user) = match r.split_once(" (") {
                Some((p, u)) => (p, Some(u)),
                None => (*r, None),
            };
            let abs = s(&node.join(path));
            match user {
                Some(u) => format!("{abs} ({u}"),
                None => abs,
            }
        })
        .collect()
}

/// The PEM certificate a bundle file holds: itself, or a kubeconfig user's embedded one.
fn cert_pem(file: &Path, user: Option<&str>, work: &Path) -> PathBuf {
    let Some(user) = user else {
        return file.to_path_buf();
    };
    use base64::Engine;
    std::fs::create_dir_all(work).unwrap();
    let text = std::fs::read_to_string(file).unwrap();
    let from = text
        .find(&format!("name: {user}"))
        .unwrap_or_else(|| panic!("user {user} in {}", file.display()));
    let line = text[from..]
        .lines()
        .find_map(|l| l.trim().strip_prefix("client-certificate-data: "))
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .unwrap();
    let out = work.join(format!("{}.pem", user.replace(':', "_")));
    std::fs::write(&out, pem).unwrap();
    out
}

/// The certificate facts renew must keep, as openssl prints them.
fn kept(pem: &Path) -> (String, String, String, String) {
    let p = s(pem);
    let ext = |name: &str| {
        let out = std::process::Command::new("openssl")
            .args(["x509", "-in", &p, "-noout", "-ext", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    (
        openssl([
            "x509", "-in", &p, "-noout", "-subject", "-nameopt", "RFC2253",
        ]),
        ext("subjectAltName"),
        openssl(["x509", "-in", &p, "-noout", "-pubkey"]),
        ext("keyUsage,extendedKeyUsage"),
    )
}

fn serial(pem: &Path) -> String {
    openssl(["x509", "-in", &s(pem), "-noout", "-serial"])
}

/// Every reissued file of `doc` is in the bundle: verified by openssl against the CA that
/// bundle.json names for it, with subject, SANs, key and usages as the original's.
fn check_bundle(doc: &Value, bundle: &Path, attime: Option<&str>) -> usize {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (i, f) in doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "reissued")
        .enumerate()
    {
        let target = PathBuf::from(f["target"].as_str().unwrap());
        let entry = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"] == f["target"])
            .unwrap_or_else(|| panic!("{target:?} not in bundle.json"));
        assert_eq!(entry["bundle_path"], f["bundle_path"]);
        assert_eq!(entry["mode"], f["mode"]);
        assert!(f["mode"].as_str().unwrap().starts_with('0'), "{f}");
        let user = f["user"].as_str();
        let new = cert_pem(
            &bundle.join(f["bundle_path"].as_str().unwrap()),
            user,
            &work.path().join(format!("{i}-new")),
        );
        let old = cert_pem(&target, user, &work.path().join(format!("{i}-old")));
        let ca = entry["ca"].as_str().unwrap();
        let mut args = vec!["verify".to_string()];
        if let Some(t) = attime {
            args.extend(["-attime".into(), t.into()]);
        }
        args.extend(["-CAfile".into(), ca.into(), s(&new)]);
        let out = openssl(&args);
        assert!(out.trim().ends_with(": OK"), "{target:?}: {out}");
        crate::util::cfssl_certinfo(&new);
        assert_eq!(
            kept(&new),
            kept(&old),
            "{target:?} {user:?}: kept as it was"
        );
        assert_ne!(serial(&new), serial(&old), "{target:?}: new serial");
        assert_eq!(
            f["new_serial"].as_str().unwrap(),
            serial(&new).trim().trim_start_matches("serial=")
        );
        assert!(f["sans"]["added"].as_array().unwrap().is_empty());
        assert!(f["sans"]["removed"].as_array().unwrap().is_empty());
        checked += 1;
    }
    checked
}

/// The done-when scenario: one leaf expired, one expiring within hours, the rest with 11 days
/// left. A 10-day window renews exactly the first two; rollout accepts the bundle.
#[test]
fn renews_exactly_the_expired_and_expiring_leaves() {
    let dir = fixture("kubeadm");
    let node = dir.path();
    // apiserver.crt ended 2034-11-30T23:55Z; etcd/server.crt ends 2034-12-20T23:55Z.
    shorten(
        node,
        "etc/kubernetes/pki/apiserver.crt",
        "2034-11-01T00:00:00Z",
        "30d",
    );
    shorten(
        node,
        "etc/kubernetes/pki/etcd/server.crt",
        "2034-12-01T00:00:00Z",
        "20d",
    );
    let report = certs([
        "inspect",
        "--root",
        &s(node),
        "--now",
        YEAR_END,
        "--warn-within",
        "10d",
        "-o",
        "json",
    ])
    .json();
    let status = |suffix: &str| crate::util::cert(&report, suffix)["status"].clone();
    assert_eq!(status("pki/apiserver.crt"), "expired");
    assert_eq!(status("pki/etcd/server.crt"), "expiring");
    assert_eq!(status("pki/etcd/peer.crt"), "ok");

    let before = tree_digest(node);
    let out = tempfile::tempdir().unwrap();
    let bundle = out.path().join("renewed");
    let (run, doc) = renew_json(&[
        "--root".into(),
        s(node),
        "--now".into(),
        YEAR_END.into(),
        "--within".into(),
        "10d".into(),
        "--out".into(),
        s(&bundle),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(doc["changed"], true);
    assert_eq!(doc["within_seconds"], 10 * 86400);
    assert_eq!(doc["bundle"], s(&bundle));
    assert_eq!(
        with_action(&doc, "reissued"),
        names(
            node,
            &[
                "etc/kubernetes/pki/apiserver.crt",
                "etc/kubernetes/pki/etcd/server.crt"
            ]
        )
    );
    assert!(with_action(&doc, "refused").is_empty(), "{doc:#}");
    // Everything else was read and left alone: leaves with 11 days, kubeconfigs included.
    let unchanged = with_action(&doc, "unchanged");
    assert!(unchanged.contains(&s(&node.join("etc/kubernetes/pki/etcd/peer.crt"))));
    assert!(unchanged.contains(&format!(
        "{} (kubernetes-admin)",
        s(&node.join("etc/kubernetes/admin.conf"))
    )));
    assert!(doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["action"] != "unchanged" || f["status"] == "ok"));
    assert_eq!(before, tree_digest(node), "originals untouched");

    // The bundle: exactly those two, verified against their own CAs, all else as it was.
    let mut files: Vec<String> = walkdir::WalkDir::new(&bundle)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| s(e.path().strip_prefix(&bundle).unwrap()))
        .collect();
    files.sort();
    assert_eq!(
        files,
        // Paths relative to the targets' common directory, as reissue lays them out.
        ["apiserver.crt", "bundle.json", "etcd/server.crt"]
    );
    assert_eq!(check_bundle(&doc, &bundle, Some(YEAR_END_EPOCH)), 2);
    // The CA ends 2035-01-01: the new validity is clamped to it, said on stderr only.
    assert!(run.stderr.contains("clamped"), "{}", run.stderr);
    assert!(!run.stdout.contains("certs: warning"), "{}", run.stdout);
    let api = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| ends(&f["target"], "pki/apiserver.crt"))
        .unwrap();
    assert!(api["warnings"][0].as_str().unwrap().contains("clamped"));
    assert_eq!(api["new_not_after"], "2035-01-01T00:00:00Z");

    let plan = plan(&bundle, node);
    let steps: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["component"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["etcd", "kube-apiserver"], "{plan:#}");
}

/// The kubeadm year-end chore in one command: every leaf file, every kubeconfig's embedded
/// certificate and the kubelet's client certificate kubelet.conf references. The kubelet's
/// serving certificate, signed by the CA the kubelet made for itself, is refused with why
/// (exit 1) and the others are still renewed.
#[test]
fn kubeadm_year_end_renews_every_leaf_and_refuses_the_kubelets_own() {
    let dir = fixture("kubeadm");
    let node = dir.path();
    let bundle = node.join("renewed");
    let (run, doc) = renew_json(&[
        "--root".into(),
        s(node),
        "--now".into(),
        YEAR_END.into(),
        "--out".into(),
        s(&bundle),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        with_action(&doc, "reissued"),
        names(
            node,
            &[
                "etc/kubernetes/pki/apiserver.crt",
                "etc/kubernetes/pki/apiserver-etcd-client.crt",
                "etc/kubernetes/pki/apiserver-kubelet-client.crt",
                "etc/kubernetes/pki/front-proxy-client.crt",
                "etc/kubernetes/pki/etcd/server.crt",
                "etc/kubernetes/pki/etcd/peer.crt",
                "etc/kubernetes/pki/etcd/healthcheck-client.crt",
                "etc/kubernetes/admin.conf (kubernetes-admin)",
                "etc/kubernetes/super-admin.conf (kubernetes-super-admin)",
                "etc/kubernetes/controller-manager.conf (system:kube-controller-manager)",
                "etc/kubernetes/scheduler.conf (system:kube-scheduler)",
                "var/lib/kubelet/pki/kubelet-client-current.pem",
            ]
        )
    );
    let refused: Vec<&Value> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "refused")
        .collect();
    assert_eq!(refused.len(), 1, "{doc:#}");
    assert_eq!(
        refused[0]["target"],
        s(&node.join("var/lib/kubelet/pki/kubelet.crt"))
    );
    let why = refused[0]["reason"].as_str().unwrap();
    assert!(
        why.contains("the kubelet made for itself") && why.contains("restart the kubelet"),
        "{why}"
    );
    assert!(run.stderr.contains("refused:"), "{}", run.stderr);
    assert_eq!(doc["counts"]["reissued"], 12);
    assert_eq!(doc["changed"], true);
    assert_eq!(check_bundle(&doc, &bundle, Some(YEAR_END_EPOCH)), 12);

    // Kubeconfigs: only the client-certificate-data line changes, and the key still pairs.
    let old = std::fs::read_to_string(node.join("etc/kubernetes/admin.conf")).unwrap();
    let new = std::fs::read_to_string(bundle.join("etc/kubernetes/admin.conf")).unwrap();
    let changed: Vec<_> = old
        .lines()
        .zip(new.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].1.trim().starts_with("client-certificate-data:"));
    // The kubelet's file keeps its key after the certificate.
    let client =
        std::fs::read_to_string(bundle.join("var/lib/kubelet/pki/kubelet-client-current.pem"))
            .unwrap();
    assert!(client.contains("-----BEGIN EC PRIVATE KEY-----"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["schema"], "certs.bundle/v1");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 12);
    assert!(manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "kubeconfig")
        .all(|f| f["mode"] == "0600"));

    let plan = plan(&bundle, node);
    let kubelet = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["component"] == "kubelet")
        .unwrap_or_else(|| panic!("no kubelet step: {plan:#}"));
    assert_eq!(
        kubelet["restart"],
        serde_json::json!({"systemd": "kubelet"})
    );
}

#[test]
fn nothing_due_says_so_and_writes_nothing() {
    let dir = fixture("kubeadm");
    let bundle = dir.path().join("never");
    let run = certs([
        "renew",
        "--root",
        &s(dir.path()),
        "--now",
        crate::util::NOW,
        "--out",
        &s(&bundle),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("nothing due"), "{}", run.stdout);
    assert!(!bundle.exists());
    let (run, doc) = renew_json(&[
        "--root".into(),
        s(dir.path()),
        "--now".into(),
        crate::util::NOW.into(),
        "--out".into(),
        s(&bundle),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["bundle"], Value::Null);
    assert_eq!(doc["counts"]["reissued"], 0);
    assert_eq!(
        doc["counts"]["unchanged"],
        doc["files"].as_array().unwrap().len()
    );
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    assert!(!bundle.exists());
}

/// `--all` on every layout: each leaf of the node (as inspect lists them) reissued by its own CA
/// and checked with openssl; CAs never. Issued at the real time (cfssl dates are the date the
/// fixtures were made).
#[test]
fn every_layout_renews_every_leaf_with_all() {
    for layout in ["kubeadm", "kubespray", "binary", "kubeasz-ecdsa"] {
        let dir = fixture(layout);
        let node = dir.path();
        let bundle = node.join("renewed");
        let before = tree_digest(&node.join("etc"));
        let (run, doc) = renew_json(&[
            "--root".into(),
            s(node),
            "--all".into(),
            "--out".into(),
            s(&bundle),
        ]);
        let report = certs(["inspect", "--root", &s(node), "-o", "json"]).json();
        let leaves: BTreeSet<String> = report["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["is_ca"] == false && c["index"] == 0)
            .map(|c| {
                let path = c["path"].as_str().unwrap().to_string();
                match c["embedded"].as_str() {
                    Some(e) => format!(
                        "{path} ({})",
                        e.trim_start_matches("users[").rsplit_once("].").unwrap().0
                    ),
                    None => path,
                }
            })
            .collect();
        let mut done = with_action(&doc, "reissued");
        done.extend(with_action(&doc, "refused"));
        assert_eq!(done, leaves, "{layout}");
        let refused = with_action(&doc, "refused");
        if layout == "kubeadm" {
            assert_eq!(run.code, 1, "{layout}: {}", run.stderr);
            assert_eq!(refused.len(), 1, "{layout}: the kubelet's own: {refused:?}");
        } else {
            assert_eq!(run.code, 0, "{layout}: {}", run.stderr);
            assert!(refused.is_empty(), "{layout}: {refused:?}");
        }
        assert!(with_action(&doc, "unchanged").is_empty());
        let n = check_bundle(&doc, &bundle, None);
        assert_eq!(n, leaves.len() - refused.len(), "{layout}");
        assert_eq!(
            before,
            tree_digest(&node.join("etc")),
            "{layout}: untouched"
        );
    }
}

/// A leaf whose CA key is not on the node is refused with why, and the others are renewed;
/// `--ca/--ca-key` gives that CA from elsewhere, for the leaves it signed only.
#[test]
fn a_missing_ca_key_refuses_its_leaves_only() {
    let dir = fixture("kubeadm");
    let node = dir.path();
    let pki = node.join("etc/kubernetes/pki");
    let elsewhere = tempfile::tempdir().unwrap();
    let away = elsewhere.path().join("front-proxy-ca.key");
    std::fs::rename(pki.join("front-proxy-ca.key"), &away).unwrap();
    let bundle = node.join("b1");
    let (run, doc) = renew_json(&[s(&pki), "--all".into(), "--out".into(), s(&bundle)]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let refused = with_action(&doc, "refused");
    assert_eq!(
        refused,
        names(node, &["etc/kubernetes/pki/front-proxy-client.crt"])
    );
    let why = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["action"] == "refused")
        .unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("no private key"), "{why}");
    assert_eq!(with_action(&doc, "reissued").len(), 6, "{doc:#}");
    assert!(!bundle.join("front-proxy-client.crt").exists());
    assert!(bundle.join("apiserver.crt").exists());

    let bundle = node.join("b2");
    let (run, doc) = renew_json(&[
        s(&pki),
        "--all".into(),
        "--ca".into(),
        s(&pki.join("front-proxy-ca.crt")),
        "--ca-key".into(),
        s(&away),
        "--out".into(),
        s(&bundle),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(with_action(&doc, "reissued").len(), 7);
    let front = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| ends(&f["target"], "front-proxy-client.crt"))
        .unwrap();
    assert!(ends(&front["ca"], "front-proxy-ca.crt"), "{front}");
    let api = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| ends(&f["target"], "pki/apiserver.crt"))
        .unwrap();
    assert!(ends(&api["ca"], "pki/ca.crt"), "{api}");
    assert_eq!(check_bundle(&doc, &bundle, None), 7);
}

fn ends(v: &Value, suffix: &str) -> bool {
    crate::util::ends(v, suffix)
}

/// Text output and `--dry-run`: what would be renewed, nothing written; PATHs limit the read.
#[test]
fn dry_run_and_paths() {
    let dir = fixture("kubeadm");
    let node = dir.path();
    let before = tree_digest(node);
    let run = certs([
        "renew",
        &s(&node.join("etc/kubernetes/pki/etcd")),
        "--now",
        YEAR_END,
        "--dry-run",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("dry run: would write 3 files"),
        "{}",
        run.stdout
    );
    for name in ["server.crt", "peer.crt", "healthcheck-client.crt"] {
        assert!(run.stdout.contains(name), "{}", run.stdout);
    }
    assert!(!run.stdout.contains("apiserver.crt"), "{}", run.stdout);
    assert_eq!(before, tree_digest(node));
    // --out is required unless nothing is written; a bad window is a usage error.
    assert_eq!(certs(["renew", "--root", &s(node)]).code, 2);
    let bad = certs(["renew", "--root", &s(node), "--within", "soon", "--dry-run"]);
    assert_eq!(bad.code, 2);
    assert_eq!(bad.stderr.lines().count(), 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("--within"), "{}", bad.stderr);
    let none = certs(["renew", "--root", &s(&node.join("nowhere")), "--dry-run"]);
    assert_eq!(none.code, 2);
    assert!(
        none.stderr.contains("standard locations"),
        "{}",
        none.stderr
    );
}
