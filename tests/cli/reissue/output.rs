//! How `reissue` is driven and what it says: bare file names, `-o json` results and
//! refusals, directories, and warnings on stderr.

use super::*;

#[test]
fn bare_file_names_from_inside_the_pki_directory() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let run = crate::util::certs_in(
        &pki,
        [
            "reissue",
            "apiserver.crt",
            "etcd/server.crt",
            "--add-san",
            "10.21.22.101",
            "--new-key",
            "--out",
            "b",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    verify(&pki.join("ca.crt"), &pki.join("b/apiserver.crt"));
    verify(&pki.join("etcd/ca.crt"), &pki.join("b/etcd/server.crt"));
    assert!(pki.join("b/apiserver.key").exists() && pki.join("b/etcd/server.key").exists());
    let spec = crate::util::certs_in(&pki, ["spec", "apiserver.crt"]);
    assert_eq!(spec.code, 0, "{}", spec.stderr);
}

/// `-o json` for automation: an edit that changes nothing (a SAN already there, in any of its
/// spellings, or dropped and added back) is `unchanged`, writes nothing and exits 0; a real one
/// is `reissued` with its serials, SAN diff and octal mode; one bundle holds only those.
#[test]
fn json_results_tell_changed_from_ok() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let api = pki.join("apiserver.crt");
    let out = dir.path().join("b");
    let before = tree_digest(dir.path());
    for edit in [
        vec!["--add-san", "10.21.22.73"],
        vec!["--add-san", "IP:10.21.22.73", "--add-san", "MASTER1"],
        vec!["--drop-san", "10.21.22.73", "--add-san", "10.21.22.73"],
    ] {
        let mut args = vec!["reissue", s(&api), "--out", s(&out), "-o", "json"];
        args.extend(edit.iter().copied());
        let run = certs(&args);
        assert_eq!(run.code, 0, "{edit:?}: {}", run.stderr);
        assert!(run.stderr.is_empty(), "{edit:?}: {}", run.stderr);
        let doc = run.json();
        assert_eq!(doc["schema"], "certs.reissue/v1");
        assert_eq!(doc["changed"], false, "{edit:?}");
        assert_eq!(doc["bundle"], Value::Null);
        assert_eq!(doc["counts"]["unchanged"], 1);
        let f = &doc["files"][0];
        assert_eq!(f["action"], "unchanged", "{edit:?}");
        assert!(
            f["reason"].as_str().unwrap().contains("IP:10.21.22.73"),
            "{f}"
        );
        assert_eq!(f["new_serial"], Value::Null);
        assert!(f["sans"]["added"].as_array().unwrap().is_empty());
        assert!(f["sans"]["removed"].as_array().unwrap().is_empty());
        assert!(!out.exists(), "{edit:?} made the bundle directory");
        assert_eq!(before, tree_digest(dir.path()), "{edit:?}");
    }
    let run = certs([
        "reissue",
        s(&api),
        "--add-san",
        "10.21.22.73",
        "--out",
        s(&out),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("unchanged") && run.stdout.contains("no bundle written"),
        "{}",
        run.stdout
    );
    assert!(!out.exists());

    // 10.96.0.1 is on the apiserver certificate, not on etcd's: one unchanged, one reissued.
    let server = pki.join("etcd/server.crt");
    let run = certs([
        "reissue",
        s(&api),
        s(&server),
        "--add-san",
        "10.96.0.1",
        "--out",
        s(&out),
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["changed"], true);
    assert_eq!(
        doc["bundle"],
        std::path::absolute(&out).unwrap().to_str().unwrap()
    );
    let (a, b) = (&doc["files"][0], &doc["files"][1]);
    assert_eq!(a["action"], "unchanged");
    assert_eq!(b["action"], "reissued");
    assert_eq!(b["sans"]["added"], serde_json::json!(["IP:10.96.0.1"]));
    assert_eq!(b["sans"]["removed"], serde_json::json!([]));
    assert_ne!(b["old_serial"], b["new_serial"]);
    assert_eq!(b["key"], "kept");
    assert!(b["ca"].as_str().unwrap().ends_with("etcd/ca.crt"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&server).unwrap().permissions().mode() & 0o7777;
    assert_eq!(b["mode"], format!("{mode:04o}"));
    assert_eq!(b["bundle_path"], "server.crt");
    verify(&pki.join("etcd/ca.crt"), &out.join("server.crt"));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("bundle.json")).unwrap()).unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["files"][0]["new_serial"], b["new_serial"]);
}

/// A refused target refuses the run: nothing is written, exit 2, and the document still says
/// what happened to each target (the others were held back, not reissued).
#[test]
fn json_refusal_writes_nothing() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let out = dir.path().join("b");
    let run = certs([
        "reissue",
        s(&pki.join("apiserver.crt")),
        s(&pki.join("etcd/server.crt")),
        "--drop-san",
        "10.96.0.1",
        "--out",
        s(&out),
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = run.json();
    assert_eq!(doc["changed"], false);
    assert_eq!(doc["counts"]["refused"], 2);
    let (a, b) = (&doc["files"][0], &doc["files"][1]);
    assert!(a["reason"].as_str().unwrap().contains("not written"), "{a}");
    assert_eq!(a["new_serial"], Value::Null);
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("cannot drop IP:10.96.0.1"),
        "{b}"
    );
    assert!(run
        .stderr
        .lines()
        .next()
        .unwrap()
        .contains("etcd/server.crt"));
    assert!(!out.exists());
}

/// `reissue DIR` says what it takes, and points to `renew` for a whole directory.
#[test]
fn a_directory_points_to_renew() {
    let dir = fixture("kubeadm");
    let pki = dir.path().join("etc/kubernetes/pki");
    let run = certs(["reissue", s(&pki), "--add-san", "10.21.22.101"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is a directory") && run.stderr.contains("certs renew"),
        "{}",
        run.stderr
    );
}

/// Warnings go to stderr, never stdout, in both output forms.
#[test]
fn warnings_go_to_stderr() {
    let dir = fixture("kubeadm");
    let cert = dir.path().join("etc/kubernetes/pki/front-proxy-client.crt");
    for (form, out) in [("text", "b1"), ("json", "b2")] {
        let run = certs([
            "reissue",
            s(&cert),
            "--validity",
            "20y",
            "--out",
            s(&dir.path().join(out)),
            "-o",
            form,
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains("warning: ") && run.stderr.contains("clamped"));
        assert!(
            !run.stdout.contains("clamped") || form == "json",
            "{}",
            run.stdout
        );
        if form == "json" {
            let doc = run.json();
            assert!(doc["files"][0]["warnings"][0]
                .as_str()
                .unwrap()
                .contains("clamped"));
        }
    }
}
