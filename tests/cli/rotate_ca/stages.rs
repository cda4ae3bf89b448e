//! The three stages one after the other on fixture nodes, each bundle installed by the real
//! `certs rollout apply` and rolled back by `certs rollout rollback`: `switch` reissues every
//! leaf of the old CA (openssl verifies each against the new CA and not against the old; the
//! subject, SANs, usages and public key are the original's; kubectl reads the kubeconfigs),
//! `finish` refuses while an old leaf is left and then leaves no file holding the old CA, and
//! each rollback restores every file of the node byte for byte to the stage before.
//!
//! The rollout installs on a twin of the node without its manifests and units (as the trust
//! tests do): nothing is restarted and nothing is probed. The stages read the node itself, with
//! its manifests and units (its trust flags and signing files); after each install or rollback
//! the twin's files are copied back into it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{ca_data_by_kubectl, manifest, s, verify};
use crate::util::{certs, fixture, openssl, repo, tree_digest, Run};

struct Node {
    _dirs: (tempfile::TempDir, tempfile::TempDir, tempfile::TempDir),
    /// The fixture the node was copied from (the leaves as they were).
    name: &'static str,
    /// The node the stages read.
    read: PathBuf,
    /// Its twin the rollout installs on.
    installed: PathBuf,
    work: PathBuf,
    /// A copy of the CA being replaced, kept outside the node.
    old: PathBuf,
    profile: PathBuf,
}

impl Node {
    /// A copy of fixture `name` whose CA `ca` (relative to the root) is rotated; `strip` are
    /// the directories (manifests, units) the twin is made without.
    fn new(name: &'static str, ca: &str, strip: &[&str]) -> Node {
        let (read, installed) = (fixture(name), fixture(name));
        for d in strip {
            std::fs::remove_dir_all(installed.path().join(d)).unwrap();
        }
        let work = tempfile::tempdir().unwrap();
        let old = work.path().join("old-ca.pem");
        std::fs::copy(read.path().join(ca), &old).unwrap();
        let profile = work.path().join("profile.json");
        std::fs::write(&profile, r#"{"name": "flat", "components": []}"#).unwrap();
        Node {
            name,
            read: read.path().to_path_buf(),
            installed: installed.path().to_path_buf(),
            work: work.path().to_path_buf(),
            old,
            profile,
            _dirs: (read, installed, work),
        }
    }

    /// `certs rotate-ca VERB OLD --root READ EXTRA...`.
    fn stage(&self, verb: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "rotate-ca".to_string(),
            verb.into(),
            s(&self.old),
            "--root".into(),
            s(&self.read),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        certs(args)
    }

    fn rollout(&self, words: &[&str], state: &str) -> Run {
        let mut args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        args.extend(["--state-dir".into(), s(&self.work.join(state))]);
        let mut all = vec!["rollout".to_string()];
        all.extend(args);
        certs(all)
    }

    /// The twin's copy of every target of `bundle` copied into the node the stages read.
    fn sync(&self, bundle: &Path) {
        for f in manifest(bundle)["files"].as_array().unwrap() {
            let target = PathBuf::from(f["target"].as_str().unwrap());
            let rel = target.strip_prefix(&self.read).unwrap();
            std::fs::copy(self.installed.join(rel), &target).unwrap();
        }
    }

    fn install(&self, bundle: &Path, state: &str) {
        let r = self.rollout(
            &[
                "apply",
                &s(bundle),
                "--root",
                &s(&self.installed),
                "--profile",
                &s(&self.profile),
            ],
            state,
        );
        assert_eq!(
            r.code,
            0,
            "apply {}: {}{}",
            bundle.display(),
            r.stdout,
            r.stderr
        );
        self.sync(bundle);
    }

    fn rollback(&self, bundle: &Path, state: &str) {
        let r = self.rollout(&["rollback"], state);
        assert_eq!(r.code, 0, "rollback: {}{}", r.stdout, r.stderr);
        self.sync(bundle);
    }

    /// `certs rotate-ca status` of the node, as JSON.
    fn status(&self) -> Value {
        let r = self.stage("status", &["-o", "json"]);
        assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
        r.json()
    }

    fn digest(&self) -> Vec<(PathBuf, String)> {
        tree_digest(&self.installed)
    }

    fn original(&self, rel: &Path) -> PathBuf {
        repo().join("fixtures").join(self.name).join(rel)
    }
}

/// What must survive a reissue: subject, SANs, key usages and the public key, as openssl
/// prints them.
fn kept(cert: &Path) -> String {
    let fields = openssl([
        "x509",
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,keyUsage,extendedKeyUsage",
        "-in",
        &s(cert),
    ]);
    let key = openssl(["x509", "-noout", "-pubkey", "-in", &s(cert)]);
    format!("{fields}{key}")
}

fn fingerprint(cert: &Path) -> String {
    openssl(["x509", "-noout", "-fingerprint", "-sha256", "-in", &s(cert)])
}

/// The first user's client certificate of a kubeconfig, as kubectl reads it, written to `out`.
fn client_cert_by_kubectl(kubeconfig: &Path, out: &Path) -> PathBuf {
    use base64::Engine;
    let r = Command::new("kubectl")
        .args(["config", "view", "--raw", "--kubeconfig"])
        .arg(kubeconfig)
        .args(["-o", "jsonpath={.users[0].user.client-certificate-data}"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let pem = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8_lossy(&r.stdout).trim())
        .unwrap();
    std::fs::write(out, pem).unwrap();
    out.to_path_buf()
}

/// `kubectl config get-contexts -o name` through a kubeconfig.
fn contexts(kubeconfig: &Path) -> String {
    let r = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["config", "get-contexts", "-o", "name"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    String::from_utf8_lossy(&r.stdout).into_owned()
}

/// Every file under `root` that holds the certificate `der`: in a PEM block, or in a
/// kubeconfig's `certificate-authority-data`.
pub(super) fn files_holding(root: &Path, der: &[u8]) -> Vec<PathBuf> {
    use base64::Engine;
    let holds = |text: &str| {
        pem::parse_many(text)
            .unwrap_or_default()
            .iter()
            .any(|p| p.tag() == "CERTIFICATE" && p.contents() == der)
    };
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root) {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let in_data = text.lines().any(|l| {
            l.trim_start()
                .strip_prefix("certificate-authority-data:")
                .and_then(|v| {
                    base64::engine::general_purpose::STANDARD
                        .decode(v.trim())
                        .ok()
                })
                .is_some_and(|pem| holds(&String::from_utf8_lossy(&pem)))
        });
        if holds(&text) || in_data {
            out.push(e.path().to_path_buf());
        }
    }
    out
}

fn old_der(old: &Path) -> Vec<u8> {
    pem::parse(std::fs::read(old).unwrap())
        .unwrap()
        .into_contents()
}

/// After `switch` is installed: every certificate and kubeconfig the bundle reissued verifies
/// against the new CA and not against the old, and keeps what it was.
fn check_switched(node: &Node, bundle: &Path, new_ca: &Path) -> usize {
    let m = manifest(bundle);
    let mut leaves = 0;
    for f in m["files"].as_array().unwrap() {
        let target = PathBuf::from(f["target"].as_str().unwrap());
        let rel = target.strip_prefix(&node.read).unwrap().to_path_buf();
        let now = node.installed.join(&rel);
        let (cert, was) = match f["kind"].as_str().unwrap() {
            "kubeconfig" => {
                assert!(
                    contexts(&now).contains('@') || !contexts(&now).trim().is_empty(),
                    "{}: kubectl lists its context",
                    rel.display()
                );
                assert_eq!(contexts(&now), contexts(&node.original(&rel)));
                let name = rel.to_string_lossy().replace('/', "_");
                (
                    client_cert_by_kubectl(&now, &node.work.join(format!("{name}.new.pem"))),
                    client_cert_by_kubectl(
                        &node.original(&rel),
                        &node.work.join(format!("{name}.old.pem")),
                    ),
                )
            }
            "certificate" if f["new_serial"].is_string() => (now.clone(), node.original(&rel)),
            _ => continue,
        };
        assert!(
            verify(new_ca, &cert),
            "{}: verifies against the new CA",
            rel.display()
        );
        assert!(
            !verify(&node.old, &cert),
            "{}: does not verify against the old CA alone",
            rel.display()
        );
        assert_eq!(
            kept(&cert),
            kept(&was),
            "{}: subject, SANs, usages, key",
            rel.display()
        );
        leaves += 1;
    }
    leaves
}

#[test]
fn kubeadm_trust_switch_finish_installed_and_rolled_back_stage_by_stage() {
    let node = Node::new(
        "kubeadm",
        "etc/kubernetes/pki/ca.crt",
        &["etc/kubernetes/manifests", "usr/lib/systemd"],
    );
    let pki = node.installed.join("etc/kubernetes/pki");
    let stage = || node.status()["stage"].as_str().unwrap().to_string();
    let d0 = node.digest();

    // trust
    let trust = node.work.join("trust");
    let r = node.stage("trust", &["--out", &s(&trust)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (new_ca, new_key) = (
        node.work.join("trust-new-ca/ca.crt"),
        node.work.join("trust-new-ca/ca.key"),
    );
    let new_args = ["--new-ca", &s(&new_ca), "--new-ca-key", &s(&new_key)];

    // switch before trust is installed: refused, one line, nothing written.
    let early = node.work.join("early");
    let r = node.stage("switch", &[&new_args[..], &["--out", &s(&early)]].concat());
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("expected the trust stage installed") && r.stderr.contains("nothing"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(!early.exists());

    node.install(&trust, "state-trust");
    let d1 = node.digest();
    assert_eq!(stage(), "trusted");

    // A key that is not the new CA's: refused, one line, nothing written.
    let r = node.stage(
        "switch",
        &[
            "--new-ca",
            &s(&new_ca),
            "--new-ca-key",
            &s(&node.read.join("etc/kubernetes/pki/ca.key")),
            "--out",
            &s(&early),
        ],
    );
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("expected the private key of CA"),
        "{}",
        r.stderr
    );
    assert!(!early.exists());

    // switch
    let switch = node.work.join("switch");
    let before = tree_digest(&node.read);
    let r = node.stage("switch", &[&new_args[..], &["--out", &s(&switch)]].concat());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        before,
        tree_digest(&node.read),
        "switch itself writes only the bundle"
    );
    let m = manifest(&switch);
    assert_eq!(m["rotate_ca"]["stage"], "switch");
    assert_eq!(m["rotate_ca"]["from"], "trusted");
    assert_eq!(m["rotate_ca"]["to"], "switched");
    let mut want: Vec<String> = [
        "etc/kubernetes/pki/ca.crt",
        "etc/kubernetes/pki/ca.key",
        "etc/kubernetes/pki/apiserver.crt",
        "etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "etc/kubernetes/admin.conf",
        "etc/kubernetes/super-admin.conf",
        "etc/kubernetes/controller-manager.conf",
        "etc/kubernetes/scheduler.conf",
        "var/lib/kubelet/pki/kubelet-client-current.pem",
    ]
    .iter()
    .map(|f| s(&node.read.join(f)))
    .collect();
    want.sort();
    assert_eq!(
        super::targets(&m),
        want,
        "every leaf of the cluster CA and its signing files"
    );
    node.install(&switch, "state-switch");
    let d2 = node.digest();
    assert_eq!(stage(), "switched");
    assert_eq!(check_switched(&node, &switch, &new_ca), 7);
    // kubelet.conf names its client certificate by file: the file is reissued, kubectl reads it.
    assert!(
        contexts(&node.installed.join("etc/kubernetes/kubelet.conf"))
            .contains("system:node:master1")
    );
    // The signing files are the new CA: ca.crt starts with it (and still trusts the old), ca.key
    // pairs with it, mode 0600.
    assert_eq!(fingerprint(&pki.join("ca.crt")), fingerprint(&new_ca));
    assert!(verify(
        &pki.join("ca.crt"),
        &node.original(Path::new("etc/kubernetes/pki/apiserver.crt"))
    ));
    assert_eq!(
        openssl(["pkey", "-pubout", "-in", &s(&pki.join("ca.key"))]),
        openssl(["x509", "-noout", "-pubkey", "-in", &s(&new_ca)])
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(pki.join("ca.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Another CA's leaves are not touched.
    for f in [
        "apiserver-etcd-client.crt",
        "front-proxy-client.crt",
        "etcd/server.crt",
    ] {
        assert_eq!(
            std::fs::read(pki.join(f)).unwrap(),
            std::fs::read(node.original(&Path::new("etc/kubernetes/pki").join(f))).unwrap()
        );
    }
    // Switch again: nothing to do.
    let again = node.work.join("switch-again");
    let r = node.stage("switch", &[&new_args[..], &["--out", &s(&again)]].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("unchanged"), "{}", r.stdout);
    assert!(!again.exists());

    // finish refuses while a leaf of the old CA is left: the old apiserver.crt put back.
    let finish = node.work.join("finish");
    let served = node.read.join("etc/kubernetes/pki/apiserver.crt");
    std::fs::copy(
        node.original(Path::new("etc/kubernetes/pki/apiserver.crt")),
        &served,
    )
    .unwrap();
    let before = tree_digest(&node.read);
    let r = node.stage("finish", &["--new-ca", &s(&new_ca), "--out", &s(&finish)]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one line per old leaf, then why: {}",
        r.stderr
    );
    assert!(
        lines[0].contains(&s(&served)) && lines[0].contains("still signed by the old CA"),
        "{}",
        r.stderr
    );
    assert!(
        lines[1].contains("refusing to finish: 1 leaf(s)"),
        "{}",
        r.stderr
    );
    assert!(!finish.exists(), "nothing written");
    assert_eq!(before, tree_digest(&node.read));
    std::fs::copy(pki.join("apiserver.crt"), &served).unwrap();

    // finish
    let r = node.stage("finish", &["--new-ca", &s(&new_ca), "--out", &s(&finish)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let m = manifest(&finish);
    assert_eq!(
        (
            m["rotate_ca"]["from"].as_str(),
            m["rotate_ca"]["to"].as_str()
        ),
        (Some("switched"), Some("finished"))
    );
    node.install(&finish, "state-finish");
    let d3 = node.digest();
    assert_eq!(stage(), "finished");
    let old = old_der(&node.old);
    assert_eq!(
        files_holding(&node.installed, &old),
        Vec::<PathBuf>::new(),
        "no file holds the old CA"
    );
    assert_eq!(files_holding(&node.read, &old), Vec::<PathBuf>::new());
    assert_eq!(
        super::ders(&ca_data_by_kubectl(
            &node.installed.join("etc/kubernetes/admin.conf")
        )),
        super::ders(&std::fs::read(&new_ca).unwrap()),
        "kubectl reads the new CA alone"
    );
    assert!(verify(&pki.join("ca.crt"), &pki.join("apiserver.crt")));
    assert!(!verify(
        &pki.join("ca.crt"),
        &node.original(Path::new("etc/kubernetes/pki/apiserver.crt"))
    ));
    let r = node.stage("finish", &["--new-ca", &s(&new_ca), "--out", &s(&again)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("unchanged"), "{}", r.stdout);
    assert!(!again.exists());

    assert_eq!(node.digest(), d3, "a second finish changes nothing");

    // Each rollback returns every file to the stage before, byte for byte.
    node.rollback(&finish, "state-finish");
    assert_eq!(node.digest(), d2, "finish rolled back: switched");
    assert_eq!(stage(), "switched");
    node.rollback(&switch, "state-switch");
    assert_eq!(node.digest(), d1, "switch rolled back: trusted");
    assert_eq!(stage(), "trusted");
    node.rollback(&trust, "state-trust");
    assert_eq!(node.digest(), d0, "trust rolled back: the original node");
    assert_eq!(stage(), "nothing");
}

#[test]
fn kubeasz_ecdsa_switch_and_finish_through_rollout() {
    let node = Node::new(
        "kubeasz-ecdsa",
        "etc/kubernetes/ssl/ca.pem",
        &["etc/systemd"],
    );
    let trust = node.work.join("trust");
    let r = node.stage("trust", &["--out", &s(&trust)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    node.install(&trust, "state-trust");
    let (new_ca, new_key) = (
        node.work.join("trust-new-ca/ca.pem"),
        node.work.join("trust-new-ca/ca-key.pem"),
    );
    let switch = node.work.join("switch");
    let r = node.stage(
        "switch",
        &[
            "--new-ca",
            &s(&new_ca),
            "--new-ca-key",
            &s(&new_key),
            "--out",
            &s(&switch),
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let d1 = node.digest();
    node.install(&switch, "state-switch");
    assert_eq!(node.status()["stage"], "switched");
    // Seven certificate files and four kubeconfigs (root's included), ECDSA throughout.
    assert_eq!(check_switched(&node, &switch, &new_ca), 11);
    let ssl = node.installed.join("etc/kubernetes/ssl");
    assert_eq!(fingerprint(&ssl.join("ca.pem")), fingerprint(&new_ca));
    assert_eq!(
        openssl(["pkey", "-pubout", "-in", &s(&ssl.join("ca-key.pem"))]),
        openssl(["x509", "-noout", "-pubkey", "-in", &s(&new_ca)])
    );
    let finish = node.work.join("finish");
    let r = node.stage("finish", &["--new-ca", &s(&new_ca), "--out", &s(&finish)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    node.install(&finish, "state-finish");
    assert_eq!(node.status()["stage"], "finished");
    assert_eq!(
        files_holding(&node.installed, &old_der(&node.old)),
        Vec::<PathBuf>::new()
    );
    node.rollback(&finish, "state-finish");
    node.rollback(&switch, "state-switch");
    assert_eq!(node.digest(), d1);
    assert_eq!(node.status()["stage"], "trusted");
}
