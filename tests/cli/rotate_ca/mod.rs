//! `certs rotate-ca trust | status` on copies of the kubeadm fixture: the trust bundle changes
//! exactly the trust files and kubeconfigs holding the old CA (the real kubectl reads them and
//! trusts a server of the new CA through them; openssl verifies leaves of both CAs against the
//! new trust file), `certs rollout` plans, installs and rolls it back byte for byte, a second
//! `trust` changes nothing, and `status` says which stage the node is in. [`stages`]: the three
//! stages one after the other, installed and rolled back; [`etcd_ca`]: the etcd CA of a real
//! three-member cluster rotated while a client writes.

mod etcd_ca;
mod kubeadm_ha;
mod stages;
mod through_cluster;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{certs, fixture, openssl, s, tls_server, tree_digest};

fn manifest(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap()
}

fn targets(m: &Value) -> Vec<String> {
    let mut out: Vec<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["target"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The fixture node, and a copy of the CA being replaced kept outside it (as the README says).
fn node() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = fixture("kubeadm");
    let root = dir.path().to_path_buf();
    let work = root.join("work");
    std::fs::create_dir(&work).unwrap();
    let old = work.join("old-ca.crt");
    std::fs::copy(root.join("etc/kubernetes/pki/ca.crt"), &old).unwrap();
    (dir, root, old)
}

fn trust(old: &Path, root: &Path, out: &Path, extra: &[&str]) -> crate::util::Run {
    let mut args = vec![
        "rotate-ca".to_string(),
        "trust".into(),
        s(old),
        "--root".into(),
        s(root),
        "--out".into(),
        s(out),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    certs(args)
}

/// `kubectl config view --raw` of a kubeconfig's first cluster CA data, decoded.
fn ca_data_by_kubectl(file: &Path) -> Vec<u8> {
    use base64::Engine;
    let out = Command::new("kubectl")
        .args(["config", "view", "--raw", "--kubeconfig"])
        .arg(file)
        .args([
            "-o",
            "jsonpath={.clusters[0].cluster.certificate-authority-data}",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is installed (Debian: apt-get install kubernetes-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap()
}

/// The DER of every certificate in a PEM text, through openssl.
fn ders(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem).into_owned();
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| {
            let tmp = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(tmp.path(), b.trim_start()).unwrap();
            openssl([
                "x509",
                "-noout",
                "-fingerprint",
                "-sha256",
                "-in",
                &s(tmp.path()),
            ])
        })
        .collect()
}

/// A serving leaf for 127.0.0.1 signed by `ca`/`ca_key`, made by openssl.
fn leaf_of(ca: &Path, ca_key: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (key, csr, crt, ext) = (
        dir.join("leaf.key"),
        dir.join("leaf.csr"),
        dir.join("leaf.crt"),
        dir.join("leaf.ext"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl([
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=leaf",
        "-keyout",
        &s(&key),
        "-out",
        &s(&csr),
    ]);
    openssl([
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(ca),
        "-CAkey",
        &s(ca_key),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&crt),
    ]);
    (crt, key)
}

fn verify(ca_file: &Path, leaf: &Path) -> bool {
    Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(ca_file)
        .arg(leaf)
        .output()
        .unwrap()
        .status
        .success()
}

/// kubectl through `kubeconfig` to a TLS server on loopback: its stderr (the server closes
/// after the handshake, so a kubectl that trusts it fails later, without an x509 error).
fn kubectl_to(kubeconfig: &Path, addr: std::net::SocketAddr) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--server",
            &format!("https://{addr}"),
            "--request-timeout",
            "5s",
            "get",
            "--raw",
            "/healthz",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn trust_changes_exactly_the_trust_files_and_kubeconfigs_and_both_cas_verify() {
    let (_dir, root, old) = node();
    let k8s = root.join("etc/kubernetes");
    let before = tree_digest(&root.join("etc"));
    let bundle = root.join("work/trust");
    let run = trust(&old, &root, &bundle, &[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        before,
        tree_digest(&root.join("etc")),
        "the node is untouched (signing keys included)"
    );
    let m = manifest(&bundle);
    let mut want: Vec<String> = [
        "pki/ca.crt",
        "admin.conf",
        "controller-manager.conf",
        "kubelet.conf",
        "scheduler.conf",
        "super-admin.conf",
    ]
    .iter()
    .map(|f| s(&k8s.join(f)))
    .collect();
    want.sort();
    assert_eq!(targets(&m), want, "exactly the anchors of the cluster CA");
    assert_eq!(m["rotate_ca"]["stage"], "trust");
    assert_eq!(m["rotate_ca"]["from"], "nothing");
    assert_eq!(m["rotate_ca"]["to"], "trusted");

    // The new CA: beside the bundle, named like the node's, key 0600, and said.
    let new_dir = root.join("work/trust-new-ca");
    let (new_ca, new_key) = (new_dir.join("ca.crt"), new_dir.join("ca.key"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&new_key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(run.stdout.contains(&s(&new_key)), "{}", run.stdout);
    assert!(!bundle.join("ca.key").exists(), "no key in the bundle");
    let subject = openssl(["x509", "-noout", "-subject", "-in", &s(&new_ca)]);
    assert!(subject.contains("CN = kubernetes-"), "{subject}");
    let old_pub = openssl(["x509", "-noout", "-pubkey", "-in", &s(&old)]);
    let new_pub = openssl(["x509", "-noout", "-pubkey", "-in", &s(&new_ca)]);
    assert_ne!(old_pub, new_pub);
    assert!(verify(&new_ca, &new_ca), "self-signed");

    // The trust file: the old bytes, then the new CA; openssl accepts leaves of both CAs.
    let trust_file = bundle.join("ca.crt");
    let bytes = std::fs::read(&trust_file).unwrap();
    assert!(bytes.starts_with(&std::fs::read(&old).unwrap()));
    assert_eq!(
        ders(&bytes),
        [
            ders(&std::fs::read(&old).unwrap()),
            ders(&std::fs::read(&new_ca).unwrap())
        ]
        .concat()
    );
    assert!(verify(&trust_file, &k8s.join("pki/apiserver.crt")));
    let (new_leaf, new_leaf_key) = leaf_of(&new_ca, &new_key, &root.join("work"));
    assert!(verify(&trust_file, &new_leaf));
    assert!(!verify(&old, &new_leaf), "the old CA alone does not");

    // Each kubeconfig: one line changed; kubectl reads old + new; and trusts a server of the
    // new CA through it, where the original does not.
    let server = tls_server(&new_leaf, &new_leaf_key, None);
    for f in [
        "admin.conf",
        "controller-manager.conf",
        "kubelet.conf",
        "scheduler.conf",
        "super-admin.conf",
    ] {
        let e = m["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["target"] == s(&k8s.join(f)))
            .unwrap();
        assert_eq!(e["kind"], "kubeconfig");
        let new = bundle.join(e["bundle_path"].as_str().unwrap());
        let (a, b) = (
            std::fs::read_to_string(k8s.join(f)).unwrap(),
            std::fs::read_to_string(&new).unwrap(),
        );
        let diff: Vec<_> = a.lines().zip(b.lines()).filter(|(x, y)| x != y).collect();
        assert_eq!(a.lines().count(), b.lines().count());
        assert_eq!(diff.len(), 1, "{f}: one line");
        assert!(diff[0]
            .1
            .trim_start()
            .starts_with("certificate-authority-data:"));
        assert_eq!(
            ders(&ca_data_by_kubectl(&new)),
            ders(&bytes),
            "{f}: kubectl reads old + new"
        );
        // kubelet.conf names its client certificate by an absolute path of the node, which
        // kubectl cannot read here: it is read back (above) but not dialled with.
        if f != "kubelet.conf" {
            let err = kubectl_to(&new, server);
            assert!(
                !err.contains("x509") && !err.contains("Error in configuration") && !err.is_empty(),
                "{f}: kubectl trusts the new CA through it: {err}"
            );
            let err = kubectl_to(&k8s.join(f), server);
            assert!(
                err.contains("x509: certificate signed by unknown authority"),
                "{f}: the original does not: {err}"
            );
        }
    }
}

/// Another node of the cluster gets the CA host's new CA as a certificate alone (`--new-ca`
/// without its key, as `certs cluster rotate-ca` gives it): its anchors hold both CAs, the same
/// new CA as the first node's, and no key is made or written anywhere.
#[test]
fn trust_with_the_new_ca_certificate_alone_makes_no_key() {
    let (_first, root1, old1) = node();
    let made = trust(&old1, &root1, &root1.join("work/trust"), &[]);
    assert_eq!(made.code, 0, "{}{}", made.stdout, made.stderr);
    let new_ca = root1.join("work/trust-new-ca/ca.crt");

    let (_second, root2, old2) = node();
    let before = tree_digest(&root2.join("etc"));
    let bundle = root2.join("work/trust");
    let run = trust(&old2, &root2, &bundle, &["--new-ca", &s(&new_ca)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        before,
        tree_digest(&root2.join("etc")),
        "the node is untouched"
    );
    assert!(
        !root2.join("work/trust-new-ca").exists(),
        "no new CA is made when one is given"
    );
    let keys: Vec<String> = walk(&root2.join("work"))
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("PRIVATE KEY")))
        .map(|p| s(&p))
        .collect();
    assert!(
        keys.is_empty(),
        "no key written beside the bundle: {keys:?}"
    );
    let m = manifest(&bundle);
    assert_eq!(m["rotate_ca"]["to"], "trusted");
    // The bundle's CA file holds the old CA, then exactly the given new one.
    let ca = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"].as_str().unwrap().ends_with("pki/ca.crt"))
        .expect("ca.crt is an anchor");
    let staged = std::fs::read(bundle.join(ca["bundle_path"].as_str().unwrap())).unwrap();
    assert_eq!(
        ders(&staged),
        [
            ders(&std::fs::read(&old2).unwrap()),
            ders(&std::fs::read(&new_ca).unwrap())
        ]
        .concat()
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_etcd_and_front_proxy_cas_rotate_on_their_own() {
    let (_dir, root, _) = node();
    let pki = root.join("etc/kubernetes/pki");
    for (ca, anchor) in [
        ("etcd/ca.crt", "etcd/ca.crt"),
        ("front-proxy-ca.crt", "front-proxy-ca.crt"),
    ] {
        let out = root.join(format!("work/{}", ca.replace('/', "-")));
        let run = trust(&pki.join(ca), &root, &out, &["-o", "json"]);
        assert_eq!(run.code, 0, "{ca}: {}", run.stderr);
        let v = run.json();
        assert_eq!(v["changed"], true);
        assert_eq!(targets(&manifest(&out)), [s(&pki.join(anchor))], "{ca}");
        assert_eq!(v["new_ca"]["source"]["made"], true);
    }
}

#[test]
fn rollout_installs_the_trust_bundle_a_second_trust_changes_nothing_and_rollback_restores_bytes() {
    let (_dir, root, old) = node();
    let bundle = root.join("work/trust");
    let run = trust(&old, &root, &bundle, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // On the node itself: plan and apply --dry-run accept it (nothing is probed or changed).
    let state = root.join("work/state");
    for verb in [&["plan"][..], &["apply", "--dry-run"][..]] {
        let mut args = vec!["rollout".to_string()];
        args.extend(verb.iter().map(|v| v.to_string()));
        args.extend([
            s(&bundle),
            "--root".into(),
            s(&root),
            "--state-dir".into(),
            s(&state),
        ]);
        let r = certs(&args);
        assert_eq!(r.code, 0, "{verb:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("kube-apiserver"), "{}", r.stdout);
    }
    let st = certs(["rotate-ca", "status", &s(&old), "--root", &s(&root)]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(st.stdout.starts_with("stage: nothing"), "{}", st.stdout);

    // Installed for real on a copy of the node with no component to restart (its manifests and
    // units removed): the bundle records the root it was made under and moves to this one.
    let copy = fixture("kubeadm");
    let other = copy.path();
    std::fs::remove_dir_all(other.join("etc/kubernetes/manifests")).unwrap();
    std::fs::remove_dir_all(other.join("usr/lib/systemd")).unwrap();
    let profile = root.join("work/profile.json");
    std::fs::write(&profile, r#"{"name": "flat", "components": []}"#).unwrap();
    let before = tree_digest(other);
    let state = root.join("work/state2");
    let rollout = |words: &[&str]| {
        let mut args = vec!["rollout".to_string()];
        args.extend(words.iter().map(|w| w.to_string()));
        args.extend(["--state-dir".into(), s(&state)]);
        certs(args)
    };
    let apply = rollout(&[
        "apply",
        &s(&bundle),
        "--root",
        &s(other),
        "--profile",
        &s(&profile),
    ]);
    assert_eq!(apply.code, 0, "{}{}", apply.stdout, apply.stderr);
    let pki = other.join("etc/kubernetes/pki");
    assert_eq!(
        std::fs::read(pki.join("ca.crt")).unwrap(),
        std::fs::read(bundle.join("ca.crt")).unwrap()
    );
    assert!(verify(&pki.join("ca.crt"), &pki.join("apiserver.crt")));
    let st = certs(["rotate-ca", "status", &s(&old), "--root", &s(other)]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(st.stdout.starts_with("stage: trusted\n"), "{}", st.stdout);
    assert!(
        st.stdout.contains("next: certs rotate-ca switch"),
        "{}",
        st.stdout
    );

    // trust again: without --new-ca the CA already trusted is found; with it, the same.
    let installed = tree_digest(other);
    let again = other.join("again");
    let new_dir = root.join("work/trust-new-ca");
    for extra in [
        vec![],
        vec![
            "--new-ca".to_string(),
            s(&new_dir.join("ca.crt")),
            "--new-ca-key".into(),
            s(&new_dir.join("ca.key")),
        ],
    ] {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = trust(&old, other, &again, &extra);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stdout.starts_with("already trusting both"),
            "{}",
            r.stdout
        );
        assert!(!again.exists(), "no bundle written");
        assert!(!other.join("again-new-ca").exists(), "no CA made");
        assert_eq!(installed, tree_digest(other));
    }

    // The rollback restores every file byte for byte.
    let back = rollout(&["rollback"]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(before, tree_digest(other), "byte for byte");
    let st = certs(["rotate-ca", "status", &s(&old), "--root", &s(other)]);
    assert!(st.stdout.starts_with("stage: nothing"), "{}", st.stdout);
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let (_dir, root, _) = node();
    let pki = root.join("etc/kubernetes/pki");
    let before = tree_digest(&root);
    let out = root.join("work/out");
    // A leaf is no CA.
    let r = trust(&pki.join("apiserver.crt"), &root, &out, &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("expected CA certificates"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    // A CA this node does not trust.
    let foreign = fixture("kubespray");
    let r = trust(
        &foreign.path().join("etc/ssl/etcd/ssl/ca.pem"),
        &root,
        &out,
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("found none"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    // A new CA key that is not the new CA's.
    let r = trust(
        &pki.join("ca.crt"),
        &root,
        &out,
        &[
            "--new-ca",
            &s(&pki.join("front-proxy-ca.crt")),
            "--new-ca-key",
            &s(&pki.join("ca.key")),
        ],
    );
    assert_eq!(r.code, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert_eq!(before, tree_digest(&root), "nothing written");
}
