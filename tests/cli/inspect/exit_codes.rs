//! Exit codes, arguments and `--root`: `--warn-within`, unreadable roots, bad arguments and
//! the standard locations.

use super::*;

#[test]
fn warn_within_sets_the_exit_code() {
    let dir = fixture("kubeadm");
    let path = dir.path().to_str().unwrap();
    let quiet = certs(["inspect", path, "--now", NOW, "--warn-within", "30d"]);
    assert_eq!(quiet.code, 0, "{}{}", quiet.stdout, quiet.stderr);
    // Eleven months before the leaves' end: within a year, not within 30 days.
    let late = certs([
        "inspect",
        path,
        "--now",
        "2034-02-01T00:00:00Z",
        "--warn-within",
        "365d",
        "-o",
        "json",
    ]);
    assert_eq!(late.code, 1);
    assert_eq!(
        cert(&late.json(), "pki/apiserver.crt")["status"],
        "expiring"
    );
    // Without --warn-within problems are shown but do not fail the run.
    let broken = fixture("broken");
    let shown = certs(["inspect", broken.path().to_str().unwrap(), "--now", NOW]);
    assert_eq!(shown.code, 0);
    assert!(shown.stdout.contains("key-mismatch"));
    let failed = certs([
        "inspect",
        broken.path().to_str().unwrap(),
        "--now",
        NOW,
        "--warn-within",
        "1d",
    ]);
    assert_eq!(failed.code, 1);
}

#[test]
fn unreadable_root_and_bad_arguments_exit_2() {
    let run = certs(["inspect", "/nonexistent/etc/kubernetes"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/etc/kubernetes"),
        "{}",
        run.stderr
    );
    let empty = tempfile::tempdir().unwrap();
    let run = certs(["inspect", "--root", empty.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("none of the standard locations exists"),
        "{}",
        run.stderr
    );
    let run = certs(["inspect", "--warn-within", "soon", "."]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("found `soon`"), "{}", run.stderr);
    let run = certs(["inspect", "--now", "yesterday", "."]);
    assert_eq!(run.code, 2);
    let run = certs(["inspect", "https://127.0.0.1:1"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--ca"), "{}", run.stderr);
}

#[test]
fn root_reads_standard_locations_and_follows_kubeconfig_references() {
    let dir = fixture("kubeadm");
    let run = certs([
        "inspect",
        "--root",
        dir.path().to_str().unwrap(),
        "--now",
        NOW,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Paths are the ones JSON and preflight show: under the root, as on this machine.
    let root = dir.path().to_str().unwrap();
    assert!(
        run.stdout
            .contains(&format!("{root}/etc/kubernetes/pki/apiserver.crt")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(&format!(
        "{root}/var/lib/kubelet/pki/kubelet-client-current.pem"
    )));
    // Given only /etc/kubernetes, kubelet.conf's absolute reference is still read under --root.
    let etc = dir.path().join("etc/kubernetes");
    let run = certs([
        "inspect",
        etc.to_str().unwrap(),
        "--root",
        dir.path().to_str().unwrap(),
        "--now",
        NOW,
        "-o",
        "json",
    ]);
    let report = run.json();
    assert!(ends(
        &cert(&report, "kubelet-client-current.pem")["signed_by"],
        "pki/ca.crt"
    ));
}
