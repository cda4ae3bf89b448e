//! `certs kubeconfig set-server | set-ca | renew` on copies of the fixtures: the edited
//! kubeconfig is read back by the real kubectl with the new value, differs from the original in
//! exactly one line, and its bundle is one `certs rollout plan` accepts; `--into` adds to a
//! bundle only when the bundle is intact; a bad input exits 2 with one line and writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{certs, certs_env, fixture, openssl, path_with, s, tree_digest};

/// `kubectl config view --kubeconfig FILE -o jsonpath=PATH` (with `--raw` for `*-data`).
fn kubectl_view(file: &Path, jsonpath: &str) -> String {
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "--kubeconfig"])
        .arg(file)
        .args(["-o", &format!("jsonpath={jsonpath}")])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run kubectl ({e}): these tests read the edited kubeconfigs with the real \
                 kubectl; install it (Debian: apt-get install kubernetes-client)"
            )
        });
    assert!(
        out.status.success(),
        "kubectl config view {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn server_by_kubectl(file: &Path) -> String {
    kubectl_view(file, "{.clusters[0].cluster.server}")
}

/// The lines that differ between two texts with the same number of lines.
fn changed_lines(before: &str, after: &str) -> Vec<(String, String)> {
    assert_eq!(
        before.split_inclusive('\n').count(),
        after.split_inclusive('\n').count(),
        "an edit in place keeps the line count"
    );
    before
        .split_inclusive('\n')
        .zip(after.split_inclusive('\n'))
        .filter(|(a, b)| a != b)
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn manifest(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap()
}

/// The entry of `bundle.json` that replaces `target`.
fn entry<'a>(m: &'a Value, target: &Path) -> &'a Value {
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == s(target))
        .unwrap_or_else(|| panic!("no entry for {} in {m:#}", target.display()))
}

fn sha256(bytes: &[u8]) -> String {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), bytes).unwrap();
    openssl(["dgst", "-sha256", "-r", tmp.path().to_str().unwrap()])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `certs ARGS`, which must succeed.
fn ok(args: &[String]) -> String {
    let run = certs(args);
    assert_eq!(run.code, 0, "certs {args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

fn args(words: &[&str], paths: &[&Path]) -> Vec<String> {
    words
        .iter()
        .map(|w| w.to_string())
        .chain(paths.iter().map(|p| s(p)))
        .collect()
}

/// A PATH dir with a `systemctl` that must never run while planning.
fn fake_systemctl(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("systemctl");
    std::fs::write(&script, "#!/bin/sh\necho \"$@\" >> \"$0.ran\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

fn plan(bundle: &Path, root: &Path, bin: &Path, extra: &[&str]) -> Value {
    let mut a = vec![
        "rollout".to_string(),
        "plan".into(),
        s(bundle),
        "--root".into(),
        s(root),
        "-o".into(),
        "json".into(),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    let run = certs_env(&a, &[("PATH", path_with(bin))]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run.json()
}

/// The step that swaps `target`.
fn step_of<'a>(plan: &'a Value, target: &Path) -> &'a Value {
    let i = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["target"] == s(target))
        .unwrap_or_else(|| panic!("{} not in the plan {plan:#}", target.display()));
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["files"].as_array().unwrap().contains(&Value::from(i)))
        .unwrap_or_else(|| panic!("no step swaps {}: {plan:#}", target.display()))
}

#[test]
fn set_server_on_kubeadm_is_one_line_kubectl_reads_and_rollout_plans() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let k8s = root.join("etc/kubernetes");
    let (admin, kcm, kubelet) = (
        k8s.join("admin.conf"),
        k8s.join("controller-manager.conf"),
        k8s.join("kubelet.conf"),
    );
    let bundle = root.join("vip");
    let before = tree_digest(&root.join("etc"));
    let stdout = ok(&args(
        &["kubeconfig", "set-server", "https://10.21.22.101:6443"],
        &[&admin, &kcm, &kubelet],
    )
    .into_iter()
    .chain(["--root".into(), s(root), "--out".into(), s(&bundle)])
    .collect::<Vec<_>>());
    assert!(
        stdout.contains(
            "clusters[kubernetes].server https://10.21.22.73:6443 -> https://10.21.22.101:6443"
        ),
        "{stdout}"
    );
    assert_eq!(
        before,
        tree_digest(&root.join("etc")),
        "originals untouched"
    );

    let m = manifest(&bundle);
    assert_eq!(m["schema"], "certs.bundle/v1");
    assert_eq!(m["files"].as_array().unwrap().len(), 3);
    for (target, role, mode) in [
        (&admin, "admin", "0600"),
        (&kcm, "controller-manager", "0600"),
        (&kubelet, "kubelet", "0644"),
    ] {
        let e = entry(&m, target);
        assert_eq!(e["kind"], "kubeconfig");
        assert_eq!(e["role"], role, "{e:#}");
        assert_eq!(e["mode"], mode, "the file's own mode: {e:#}");
        assert!(e.get("old_serial").is_none() && e.get("new_serial").is_none());
        let new = bundle.join(e["bundle_path"].as_str().unwrap());
        let (old_text, new_text) = (
            std::fs::read_to_string(target).unwrap(),
            std::fs::read_to_string(&new).unwrap(),
        );
        assert_eq!(e["old_sha256"], sha256(old_text.as_bytes()));
        assert_eq!(e["new_sha256"], sha256(new_text.as_bytes()));
        assert_eq!(
            changed_lines(&old_text, &new_text),
            [(
                "    server: https://10.21.22.73:6443\n".to_string(),
                "    server: https://10.21.22.101:6443\n".to_string()
            )]
        );
        assert_eq!(server_by_kubectl(target), "https://10.21.22.73:6443");
        assert_eq!(server_by_kubectl(&new), "https://10.21.22.101:6443");
        assert_eq!(
            e["edits"][0],
            serde_json::json!({"at": "clusters[kubernetes].server",
                "before": "https://10.21.22.73:6443", "after": "https://10.21.22.101:6443"})
        );
    }

    // The rollout takes the bundle as it is: admin.conf restarts nothing, the
    // controller-manager restarts for its kubeconfig (its static pod reads it), the kubelet for
    // its own (its unit's drop-in names it), behind the healthz port its config file gives.
    let bin = fake_systemctl(&root.join("tools"));
    let p = plan(&bundle, root, &bin, &[]);
    let admin_step = step_of(&p, &admin);
    assert!(admin_step["restart"].is_null(), "{admin_step:#}");
    let kubelet_step = step_of(&p, &kubelet);
    assert_eq!(
        kubelet_step["restart"],
        serde_json::json!({"systemd": "kubelet"})
    );
    assert_eq!(kubelet_step["gates"][0]["url"], "http://127.0.0.1:10248");
    let kcm_step = step_of(&p, &kcm);
    assert_eq!(kcm_step["component"], "kube-controller-manager");
    assert_eq!(
        kcm_step["restart"]["static-pod"],
        s(&k8s.join("manifests/kube-controller-manager.yaml"))
    );
    assert!(!bin.join("systemctl.ran").exists(), "planning runs nothing");
}

#[test]
fn a_kubeconfig_that_is_not_text_is_one_line_and_writes_nothing() {
    let dir = fixture("binary");
    let root = dir.path();
    let binary = root.join("etc/kubernetes/garbage.kubeconfig");
    std::fs::write(&binary, b"\xff\xfe\x00kind: Config\n").unwrap();
    let bundle = root.join("moved");
    let before = tree_digest(root);
    let run = certs(
        args(
            &["kubeconfig", "set-server", "https://172.72.0.100:8443"],
            &[&binary],
        )
        .into_iter()
        .chain(["--out".into(), s(&bundle)]),
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(
        errors[0].contains("a kubeconfig (YAML text)") && errors[0].contains("binary data"),
        "{}",
        run.stderr
    );
    assert!(!bundle.exists());
    assert_eq!(tree_digest(root), before);
}

#[test]
fn set_server_on_the_binary_kube_proxy_kubeconfig() {
    let dir = fixture("binary");
    let root = dir.path();
    let proxy = root.join("etc/kubernetes/kube-proxy.kubeconfig");
    let bundle = root.join("moved");
    ok(&args(
        &["kubeconfig", "set-server", "https://172.72.0.100:8443"],
        &[&proxy],
    )
    .into_iter()
    .chain(["--out".into(), s(&bundle)])
    .collect::<Vec<_>>());
    let m = manifest(&bundle);
    let e = entry(&m, &proxy);
    assert_eq!(e["role"], "kube-proxy");
    assert_eq!(e["components"], serde_json::json!(["kube-proxy"]));
    let new = bundle.join(e["bundle_path"].as_str().unwrap());
    assert_eq!(server_by_kubectl(&new), "https://172.72.0.100:8443");
    let (old_text, new_text) = (
        std::fs::read_to_string(&proxy).unwrap(),
        std::fs::read_to_string(&new).unwrap(),
    );
    assert_eq!(changed_lines(&old_text, &new_text).len(), 1);
}

#[test]
fn set_ca_replaces_the_embedded_ca_line_only() {
    use base64::Engine;
    let dir = fixture("kubeadm");
    let root = dir.path();
    let admin = root.join("etc/kubernetes/admin.conf");
    // Another CA than the one admin.conf carries: the binary fixture's.
    let new_ca = crate::util::repo().join("fixtures/binary/etc/kubernetes/ssl/ca.pem");
    let bundle = root.join("ca");
    ok(&args(&["kubeconfig", "set-ca"], &[&new_ca, &admin])
        .into_iter()
        .chain(["--out".into(), s(&bundle)])
        .collect::<Vec<_>>());
    let m = manifest(&bundle);
    assert_eq!(m["ca"]["certificate"], s(&new_ca));
    let e = entry(&m, &admin);
    let new = bundle.join(e["bundle_path"].as_str().unwrap());
    let data = kubectl_view(&new, "{.clusters[0].cluster.certificate-authority-data}");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .unwrap(),
        std::fs::read(&new_ca).unwrap()
    );
    let (old_text, new_text) = (
        std::fs::read_to_string(&admin).unwrap(),
        std::fs::read_to_string(&new).unwrap(),
    );
    let changed = changed_lines(&old_text, &new_text);
    assert_eq!(changed.len(), 1);
    assert!(changed[0].1.starts_with("    certificate-authority-data: "));
    assert_eq!(server_by_kubectl(&new), "https://10.21.22.73:6443");

    // A CA given by file reference: that file is what must change.
    let by_file = root.join("by-file.conf");
    std::fs::write(
        &by_file,
        old_text.replacen(
            &old_text
                .lines()
                .find(|l| l.contains("certificate-authority-data"))
                .unwrap()
                .to_string(),
            &format!(
                "    certificate-authority: {}",
                s(&root.join("etc/kubernetes/pki/ca.crt"))
            ),
            1,
        ),
    )
    .unwrap();
    let out = root.join("never");
    let run = certs(
        args(&["kubeconfig", "set-ca"], &[&new_ca, &by_file])
            .into_iter()
            .chain(["--out".into(), s(&out)]),
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("that file is what must change"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}

#[test]
fn into_adds_to_an_intact_bundle_and_refuses_a_tampered_one() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let k8s = root.join("etc/kubernetes");
    let bundle = root.join("vip");
    // A reissue bundle first (the apiserver gains the VIP) …
    ok(&args(&["reissue"], &[&k8s.join("pki/apiserver.crt")])
        .into_iter()
        .chain([
            "--add-san".into(),
            "10.21.22.101".into(),
            "--out".into(),
            s(&bundle),
        ])
        .collect::<Vec<_>>());
    // … then admin.conf and super-admin.conf moved to it, into the same bundle.
    let set = |files: &[&Path], into: &Path| {
        certs(
            args(
                &["kubeconfig", "set-server", "https://10.21.22.101:6443"],
                files,
            )
            .into_iter()
            .chain(["--into".into(), s(into)]),
        )
    };
    let run = set(
        &[&k8s.join("admin.conf"), &k8s.join("super-admin.conf")],
        &bundle,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let m = manifest(&bundle);
    let targets: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets.len(), 3, "{m:#}");
    assert!(entry(&m, &k8s.join("pki/apiserver.crt"))["new_serial"].is_string());
    assert!(m["ca"]["certificate"]
        .as_str()
        .unwrap()
        .ends_with("pki/ca.crt"));
    let bin = fake_systemctl(&root.join("tools"));
    let p = plan(&bundle, root, &bin, &[]);
    assert!(step_of(&p, &k8s.join("admin.conf"))["restart"].is_null());
    assert_eq!(
        step_of(&p, &k8s.join("pki/apiserver.crt"))["component"],
        "kube-apiserver"
    );

    // A target already in the bundle is refused, and the bundle stays as it was.
    let intact = tree_digest(&bundle);
    let run = set(&[&k8s.join("admin.conf")], &bundle);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("already in it"), "{}", run.stderr);
    assert_eq!(intact, tree_digest(&bundle));

    // A bundle file changed since it was written: refused before anything is added.
    let crt = bundle.join(
        entry(&m, &k8s.join("pki/apiserver.crt"))["bundle_path"]
            .as_str()
            .unwrap(),
    );
    let mut bytes = std::fs::read(&crt).unwrap();
    bytes.extend_from_slice(b"\n");
    std::fs::write(&crt, bytes).unwrap();
    let tampered = tree_digest(&bundle);
    let run = set(&[&k8s.join("controller-manager.conf")], &bundle);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("changed since it was written"),
        "{}",
        run.stderr
    );
    assert_eq!(tampered, tree_digest(&bundle), "nothing added");
}

#[test]
fn bad_inputs_exit_2_with_one_line_and_write_nothing() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let k8s = root.join("etc/kubernetes");
    let admin = k8s.join("admin.conf");
    let kubelet = k8s.join("kubelet.conf");
    let malformed = root.join("malformed.conf");
    std::fs::write(&malformed, "apiVersion: v1\nclusters: [\n  - {name: a\n").unwrap();
    // kubelet.conf references its client certificate; take it away.
    std::fs::remove_file(root.join("var/lib/kubelet/pki/kubelet-client-current.pem")).unwrap();
    let url = "https://10.21.22.101:6443";
    let out = root.join("bundle");
    let root_s = s(root);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            args(&["kubeconfig", "set-server", url], &[&malformed]),
            "parse error",
        ),
        (
            args(&["kubeconfig", "set-server", url], &[&kubelet])
                .into_iter()
                .chain(["--root".into(), root_s.clone()])
                .collect(),
            "kubelet-client-current.pem",
        ),
        (
            args(&["kubeconfig", "set-server", url], &[&admin])
                .into_iter()
                .chain(["--cluster".into(), "nope".into()])
                .collect(),
            "expected a cluster named `nope`, found only `kubernetes`",
        ),
        (
            args(
                &["kubeconfig", "set-server", "10.21.22.101:6443"],
                &[&admin],
            ),
            "expected a server URL",
        ),
        (
            args(
                &["kubeconfig", "set-server", url],
                &[&root.join("absent.conf")],
            ),
            "absent.conf",
        ),
        (
            // A private key passed as the CA.
            args(
                &["kubeconfig", "set-ca"],
                &[&k8s.join("pki/ca.key"), &admin],
            ),
            "PRIVATE KEY block",
        ),
        (
            args(&["kubeconfig", "renew"], &[&kubelet])
                .into_iter()
                .chain(["--root".into(), root_s.clone()])
                .collect(),
            "kubelet-client-current.pem",
        ),
    ];
    let before = tree_digest(root);
    for (mut a, says) in cases {
        a.extend(["--out".into(), s(&out)]);
        let run = certs(&a);
        assert_eq!(run.code, 2, "{a:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{a:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{a:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{a:?}: {}", run.stdout);
        assert!(!out.exists(), "{a:?}: no bundle directory");
        assert_eq!(before, tree_digest(root), "{a:?}: nothing written");
    }
    // An --out that cannot be created (under a regular file): nothing written either.
    let unwritable = admin.join("bundle");
    let run = certs(
        args(&["kubeconfig", "set-server", url], &[&admin])
            .into_iter()
            .chain(["--out".into(), s(&unwritable)]),
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(&s(&unwritable)), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(before, tree_digest(root));
    // Neither --out nor --into, or both: a usage error from the parser.
    let run = certs(args(&["kubeconfig", "set-server", url], &[&admin]));
    assert_eq!(run.code, 2);
    let run = certs(
        args(&["kubeconfig", "set-server", url], &[&admin])
            .into_iter()
            .chain(["--out".into(), s(&out), "--into".into(), s(&out)]),
    );
    assert_eq!(run.code, 2);
    assert!(!out.exists());
}

#[test]
fn renew_reissues_the_embedded_client_certificate_in_one_line() {
    use base64::Engine;
    let dir = fixture("kubeadm");
    let root = dir.path();
    let k8s = root.join("etc/kubernetes");
    let admin = k8s.join("admin.conf");
    let bundle = root.join("renewed");
    let stdout = ok(&args(&["kubeconfig", "renew"], &[&admin])
        .into_iter()
        .chain(["--root".into(), s(root), "--out".into(), s(&bundle)])
        .collect::<Vec<_>>());
    assert!(stdout.contains("renewed, key and SANs kept"), "{stdout}");
    let m = manifest(&bundle);
    let e = entry(&m, &admin);
    assert_eq!(e["kind"], "kubeconfig");
    assert_ne!(e["old_serial"], e["new_serial"]);
    let new = bundle.join(e["bundle_path"].as_str().unwrap());
    let (old_text, new_text) = (
        std::fs::read_to_string(&admin).unwrap(),
        std::fs::read_to_string(&new).unwrap(),
    );
    let changed = changed_lines(&old_text, &new_text);
    assert_eq!(changed.len(), 1, "only the certificate line: {changed:?}");
    assert!(changed[0]
        .1
        .trim_start()
        .starts_with("client-certificate-data: "));
    // kubectl reads it; openssl verifies it against the cluster CA, same subject and key.
    let cert = |f: &Path| {
        base64::engine::general_purpose::STANDARD
            .decode(kubectl_view(f, "{.users[0].user.client-certificate-data}").trim())
            .unwrap()
    };
    let (old_pem, new_pem) = (root.join("old.pem"), root.join("new.pem"));
    std::fs::write(&old_pem, cert(&admin)).unwrap();
    std::fs::write(&new_pem, cert(&new)).unwrap();
    let ca = s(&k8s.join("pki/ca.crt"));
    assert!(openssl(["verify", "-CAfile", &ca, &s(&new_pem)]).contains(": OK"));
    crate::util::cfssl_certinfo(&new_pem);
    for what in ["-subject", "-pubkey"] {
        assert_eq!(
            openssl(["x509", "-noout", what, "-in", &s(&old_pem)]),
            openssl(["x509", "-noout", what, "-in", &s(&new_pem)]),
            "{what} kept"
        );
    }
}

#[test]
fn renew_a_referenced_client_certificate_needs_the_ca_beside_it_or_given() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let k8s = root.join("etc/kubernetes");
    let kubelet = k8s.join("kubelet.conf");
    let client = root.join("var/lib/kubelet/pki/kubelet-client-current.pem");
    let bundle = root.join("renewed");
    let base = args(&["kubeconfig", "renew"], &[&kubelet])
        .into_iter()
        .chain(["--root".into(), s(root), "--out".into(), s(&bundle)]);
    // No CA beside /var/lib/kubelet/pki: refused, one line saying what to pass, nothing written.
    let run = certs(base.clone());
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("--ca"), "{}", run.stderr);
    assert!(!bundle.exists());
    // Given: the referenced file is what the bundle replaces; its key block stays as it was.
    let ca = k8s.join("pki/ca.crt");
    ok(&base
        .chain([
            "--ca".into(),
            s(&ca),
            "--ca-key".into(),
            s(&k8s.join("pki/ca.key")),
        ])
        .collect::<Vec<_>>());
    let m = manifest(&bundle);
    assert_eq!(m["files"].as_array().unwrap().len(), 1, "{m:#}");
    let e = entry(&m, &client);
    assert_eq!(e["kind"], "certificate");
    assert_eq!(e["key"], "kept");
    let new = bundle.join(e["bundle_path"].as_str().unwrap());
    assert!(openssl(["verify", "-CAfile", &s(&ca), &s(&new)]).contains(": OK"));
    crate::util::cfssl_certinfo(&new);
    let key_block = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap();
        text[text.find("-----BEGIN").unwrap()..]
            .split("-----END CERTIFICATE-----")
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(key_block(&client), key_block(&new));
}
