//! `certs change` on copies of the layout fixtures, one test per field scenario: the bundle
//! holds exactly the files the change must touch; certificates verify with openssl and keep
//! subject and key; kubeconfigs are read by real kubectl with their new server and a one-line
//! diff; configuration files change by the smallest diff; bad input writes nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{certs_env, fixture, openssl, path_with, s, tree_digest, NOW};

/// A PATH dir with a `systemctl` that only logs (planning must not run it; the plan needs it).
fn tools(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("tools-bin");
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

struct Changed {
    bundle: PathBuf,
    manifest: Value,
    stdout: String,
}

fn change(root: &Path, args: &[&str]) -> Changed {
    let bundle = root.parent().unwrap().join(format!(
        "bundle-{}",
        root.file_name().unwrap().to_string_lossy()
    ));
    let bin = tools(root.parent().unwrap());
    let mut argv: Vec<String> = vec![
        "change".into(),
        "--root".into(),
        s(root),
        "--out".into(),
        s(&bundle),
        "--state-dir".into(),
        s(&root.parent().unwrap().join("state")),
    ];
    // The rcgen fixtures are pinned; cfssl's are valid from the day they were made.
    if root.join("etc/kubernetes/pki").exists() {
        argv.extend(["--now".to_string(), NOW.into()]);
    }
    argv.extend(args.iter().map(|a| a.to_string()));
    let before = tree_digest(root);
    let run = certs_env(&argv, &[("PATH", path_with(&bin))]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        before,
        tree_digest(root),
        "change (without --apply) touched the node"
    );
    assert!(
        !root.parent().unwrap().join("systemctl-ran").exists(),
        "planning ran systemctl"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("bundle.json")).unwrap()).unwrap();
    Changed {
        bundle,
        manifest,
        stdout: run.stdout,
    }
}

impl Changed {
    /// Targets, relative to the node root.
    fn targets(&self, root: &Path) -> BTreeSet<String> {
        self.manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                Path::new(f["target"].as_str().unwrap())
                    .strip_prefix(root)
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect()
    }

    fn new_file(&self, root: &Path, rel: &str) -> PathBuf {
        let target = root.join(rel);
        let entry = self.manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| Path::new(f["target"].as_str().unwrap()) == target)
            .unwrap_or_else(|| panic!("{rel} not in the bundle"));
        self.bundle.join(entry["bundle_path"].as_str().unwrap())
    }
}

fn sans(cert: &Path) -> BTreeSet<String> {
    let text = openssl([
        "x509",
        "-noout",
        "-ext",
        "subjectAltName",
        "-in",
        cert.to_str().unwrap(),
    ]);
    text.lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|x| x.trim().replace("IP Address:", "IP:"))
        .filter(|x| !x.is_empty())
        .collect()
}

/// The new certificate verifies against the CA, keeps the old one's subject (DER) and key.
fn same_identity(old: &Path, new: &Path, ca: &Path) {
    let verify = openssl([
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        new.to_str().unwrap(),
    ]);
    assert!(verify.contains(": OK"), "{verify}");
    crate::util::cfssl_certinfo(new);
    for what in ["-subject", "-pubkey"] {
        let a = openssl([
            "x509",
            "-noout",
            what,
            "-nameopt",
            "RFC2253",
            "-in",
            old.to_str().unwrap(),
        ]);
        let b = openssl([
            "x509",
            "-noout",
            what,
            "-nameopt",
            "RFC2253",
            "-in",
            new.to_str().unwrap(),
        ]);
        assert_eq!(a, b, "{what} changed");
    }
}

/// Lines that differ, as (removed, added) counts (a line-by-line diff of equal-length prefixes).
fn diff_lines(old: &Path, new: &Path) -> (usize, usize) {
    let a = std::fs::read_to_string(old).unwrap();
    let b = std::fs::read_to_string(new).unwrap();
    let out = std::process::Command::new("diff")
        .args([old, new])
        .output()
        .expect("diff");
    let text = String::from_utf8_lossy(&out.stdout);
    let removed = text.lines().filter(|l| l.starts_with("< ")).count();
    let added = text.lines().filter(|l| l.starts_with("> ")).count();
    assert!(!a.is_empty() && !b.is_empty());
    (removed, added)
}

fn kubectl_server(kubeconfig: &Path) -> String {
    let out = std::process::Command::new("kubectl")
        .args([
            "config",
            "view",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ])
        .output()
        .expect("kubectl is on the machine image (else Debian's kubernetes-client)");
    assert!(
        out.status.success(),
        "kubectl config view: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A copy of `fixtures/<layout>` as `<tmp>/node`, so the tools and bundles sit beside it.
fn node(layout: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = fixture(layout);
    let root = dir.path().join("node");
    let entries: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    std::fs::create_dir(&root).unwrap();
    for e in entries {
        std::fs::rename(&e, root.join(e.file_name().unwrap())).unwrap();
    }
    (dir, root)
}

#[test]
fn kubeadm_single_master_gets_an_haproxy_vip() {
    let (_dir, root) = node("kubeadm");
    let c = change(&root, &["--vip", "10.21.22.100"]);
    assert_eq!(
        c.targets(&root),
        BTreeSet::from(
            [
                "etc/kubernetes/pki/apiserver.crt",
                "etc/kubernetes/admin.conf",
                "etc/kubernetes/super-admin.conf",
                "etc/kubernetes/kubelet.conf",
            ]
            .map(String::from)
        )
    );
    let pki = root.join("etc/kubernetes/pki");
    let new = c.new_file(&root, "etc/kubernetes/pki/apiserver.crt");
    same_identity(&pki.join("apiserver.crt"), &new, &pki.join("ca.crt"));
    let added: Vec<String> = sans(&new)
        .difference(&sans(&pki.join("apiserver.crt")))
        .cloned()
        .collect();
    assert_eq!(added, ["IP:10.21.22.100"]);
    for kc in ["admin.conf", "super-admin.conf", "kubelet.conf"] {
        let new = c.new_file(&root, &format!("etc/kubernetes/{kc}"));
        assert_eq!(kubectl_server(&new), "https://10.21.22.100:6443", "{kc}");
        assert_eq!(
            diff_lines(&root.join("etc/kubernetes").join(kc), &new),
            (1, 1),
            "{kc}"
        );
    }
    // The plan restarts the apiserver (static pod) and the kubelet (its kubeconfig moved);
    // admin.conf and super-admin.conf restart nothing.
    assert!(
        c.stdout
            .contains("1. kube-apiserver: swap 1 file(s), park and restore static pod manifest"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout
            .contains("kubelet: swap 1 file(s), systemctl restart kubelet"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains("files-only: swap 2 file(s)"),
        "{}",
        c.stdout
    );
}

#[test]
fn kubeasz_vip_moves_with_its_port() {
    let (_dir, root) = node("kubeasz-ecdsa");
    let root = root.as_path();
    let c = change(
        root,
        &[
            "--vip",
            "192.168.1.40:8443",
            "--old-vip",
            "192.168.1.39:8443",
        ],
    );
    assert_eq!(
        c.targets(root),
        BTreeSet::from(
            ["etc/kubernetes/ssl/kubernetes.pem", "root/.kube/config"].map(String::from)
        )
    );
    let ssl = root.join("etc/kubernetes/ssl");
    let new = c.new_file(root, "etc/kubernetes/ssl/kubernetes.pem");
    same_identity(&ssl.join("kubernetes.pem"), &new, &ssl.join("ca.pem"));
    assert!(sans(&new).contains("IP:192.168.1.40"));
    let kc = c.new_file(root, "root/.kube/config");
    assert_eq!(kubectl_server(&kc), "https://192.168.1.40:8443");
    assert_eq!(diff_lines(&root.join("root/.kube/config"), &kc), (1, 1));
    assert!(!c.stdout.contains(":6443 ->"), "{}", c.stdout);
}

#[test]
fn binary_cluster_retires_two_of_three_masters() {
    let (_dir, root) = node("binary");
    let root = root.as_path();
    // --offline: the fixture's addresses are not this machine's; nothing may be probed.
    let c = change(
        root,
        &["--retire", "etcd2", "--retire", "172.72.0.97", "--offline"],
    );
    let targets = c.targets(root);
    for t in [
        "etc/kubernetes/ssl/kubernetes.pem",
        "etc/kubernetes/ssl/etcd.pem",
        "etc/systemd/system/kube-apiserver.service",
        "etc/systemd/system/etcd.service",
        "etc/kube-lb/conf/kube-lb.conf",
    ] {
        assert!(targets.contains(t), "{t} missing from {targets:?}");
    }
    // kube-proxy's kubeconfig is on the kept master: not in the bundle.
    assert!(!targets.contains("etc/kubernetes/kube-proxy.kubeconfig"));
    let ssl = root.join("etc/kubernetes/ssl");
    for cert in ["kubernetes.pem", "etcd.pem"] {
        let new = c.new_file(root, &format!("etc/kubernetes/ssl/{cert}"));
        same_identity(&ssl.join(cert), &new, &ssl.join("ca.pem"));
        let gone: BTreeSet<String> = sans(&ssl.join(cert))
            .difference(&sans(&new))
            .cloned()
            .collect();
        assert_eq!(
            gone,
            BTreeSet::from(["IP:172.72.0.96".to_string(), "IP:172.72.0.97".to_string()]),
            "{cert}"
        );
    }
    let unit = c.new_file(root, "etc/systemd/system/kube-apiserver.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains("--etcd-servers=https://172.72.0.95:2379 \\"),
        "{text}"
    );
    assert_eq!(
        diff_lines(
            &root.join("etc/systemd/system/kube-apiserver.service"),
            &unit
        ),
        (1, 1)
    );
    let etcd = c.new_file(root, "etc/systemd/system/etcd.service");
    assert!(std::fs::read_to_string(&etcd)
        .unwrap()
        .contains("--initial-cluster=etcd1=https://172.72.0.95:2380 \\"));
    assert_eq!(
        diff_lines(&root.join("etc/systemd/system/etcd.service"), &etcd),
        (1, 1)
    );
    let lb = c.new_file(root, "etc/kube-lb/conf/kube-lb.conf");
    assert_eq!(
        diff_lines(&root.join("etc/kube-lb/conf/kube-lb.conf"), &lb),
        (2, 0)
    );
    // etcd membership: the two retired members leave the cluster in the rollout.
    let mut removed: Vec<&str> = c.manifest["etcd_membership"]["remove"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    removed.sort();
    assert_eq!(removed, ["etcd2", "etcd3"]);
    // The unit edits restart etcd and the apiserver after a daemon-reload.
    assert!(
        c.stdout
            .contains("systemctl daemon-reload, then systemctl restart etcd"),
        "{}",
        c.stdout
    );
}

#[test]
fn bad_input_writes_nothing() {
    let (_dir, root) = node("binary");
    let root = root.as_path();
    let bin = tools(root.parent().unwrap());
    let bundle = root.join("never");
    let cases: &[(&[&str], &str)] = &[
        (&["--vip", "https://10.0.0.1"], "ADDR[:PORT]"),
        (&["--vip", "10.0.0.1:99999"], "ADDR[:PORT]"),
        (&["--retire", "node9"], "node9"),
        (
            &[
                "--retire", "etcd1", "--retire", "etcd2", "--retire", "etcd3",
            ],
            "at least one master",
        ),
        (&["--add-master", "node4"], "NAME=ADDR"),
        (&[], "nothing asked"),
    ];
    let before = tree_digest(root);
    for (args, want) in cases {
        let mut argv = vec![
            "change",
            "--root",
            root.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ];
        argv.extend(args.iter());
        let run = certs_env(&argv, &[("PATH", path_with(&bin))]);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert!(!bundle.exists(), "{args:?}: a bundle was written");
    }
    // An --out that cannot be created (under a regular file): exit 2, one line, nothing made.
    let file = root.parent().unwrap().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("bundle");
    let run = certs_env(
        [
            "change",
            "--root",
            root.to_str().unwrap(),
            "--retire",
            "172.72.0.97",
            "--offline",
            "--out",
            out.to_str().unwrap(),
        ],
        &[("PATH", path_with(&bin))],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("certs: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].contains("a-file/bundle"), "{}", run.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    assert_eq!(before, tree_digest(root));
}

#[test]
fn kubespray_scales_up_with_a_new_member() {
    let (_dir, root) = node("kubespray");
    let root = root.as_path();
    let c = change(root, &["--add-master", "node4=10.6.0.14", "--offline"]);
    let targets = c.targets(root);
    let ssl = root.join("etc/ssl/etcd/ssl");
    // Every etcd certificate kubespray shares names the members by address: each gains node4's.
    for n in 1..=3 {
        for kind in ["member", "admin", "node"] {
            let rel = format!("etc/ssl/etcd/ssl/{kind}-node{n}.pem");
            assert!(targets.contains(&rel), "{rel} missing");
            let new = c.new_file(root, &rel);
            same_identity(&root.join(&rel), &new, &ssl.join("ca.pem"));
            let added: Vec<String> = sans(&new)
                .difference(&sans(&root.join(&rel)))
                .cloned()
                .collect();
            // member-/admin-/node- certificates name node1..3 and their addresses: node4 joins.
            let want: Vec<&str> = if kind == "member" || kind == "node" || kind == "admin" {
                let dns: BTreeSet<String> = sans(&root.join(&rel));
                if dns.contains("DNS:node2") {
                    vec!["DNS:node4", "IP:10.6.0.14"]
                } else {
                    vec!["IP:10.6.0.14"]
                }
            } else {
                vec!["IP:10.6.0.14"]
            };
            assert_eq!(added, want, "{rel}");
        }
    }
    // node4's own certificates, made like node1's: CN replaced, a new key, the shared SANs.
    for kind in ["member", "admin", "node"] {
        let rel = format!("etc/ssl/etcd/ssl/{kind}-node4.pem");
        let new = c.new_file(root, &rel);
        let key = c.new_file(root, &format!("etc/ssl/etcd/ssl/{kind}-node4-key.pem"));
        let verify = openssl([
            "verify",
            "-CAfile",
            ssl.join("ca.pem").to_str().unwrap(),
            new.to_str().unwrap(),
        ]);
        assert!(verify.contains(": OK"), "{verify}");
        crate::util::cfssl_certinfo(&new);
        let subject = openssl(["x509", "-noout", "-subject", "-in", new.to_str().unwrap()]);
        assert!(
            subject.contains(&format!("CN = etcd-{kind}-node4")),
            "{subject}"
        );
        let template = root.join(format!("etc/ssl/etcd/ssl/{kind}-node1.pem"));
        let mut want = sans(&template);
        want.insert("IP:10.6.0.14".into());
        if want.contains("DNS:node1") {
            want.insert("DNS:node4".into());
        }
        assert_eq!(sans(&new), want, "{kind}");
        let from_cert = openssl(["x509", "-noout", "-pubkey", "-in", new.to_str().unwrap()]);
        assert_eq!(
            from_cert,
            openssl(["pkey", "-pubout", "-in", key.to_str().unwrap()])
        );
        assert_ne!(
            from_cert,
            openssl([
                "x509",
                "-noout",
                "-pubkey",
                "-in",
                template.to_str().unwrap()
            ]),
            "a new key"
        );
    }
    let env = c.new_file(root, "etc/etcd.env");
    assert!(std::fs::read_to_string(&env)
        .unwrap()
        .contains(",node4=https://10.6.0.14:2380\n"));
    assert_eq!(diff_lines(&root.join("etc/etcd.env"), &env), (1, 1));
    let manifest = c.new_file(root, "etc/kubernetes/manifests/kube-apiserver.yaml");
    assert!(std::fs::read_to_string(&manifest)
        .unwrap()
        .contains("https://10.6.0.13:2379,https://10.6.0.14:2379\n"));
    assert_eq!(
        diff_lines(
            &root.join("etc/kubernetes/manifests/kube-apiserver.yaml"),
            &manifest
        ),
        (1, 1)
    );
    // node1's etcd restarts once, for its own files; the other nodes' copies restart nothing.
    assert!(
        c.stdout
            .contains("1. etcd: swap 2 file(s), systemctl restart etcd"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains("files-only: swap 13 file(s)"),
        "{}",
        c.stdout
    );
}

/// `openssl s_server -WWW` serving `cert`/`key` on 127.0.0.1 (a file `readyz` in its dir answers
/// `GET /readyz`); killed when dropped.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start(cert: &Path, key: &Path) -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        // kubectl asks for `/readyz?timeout=…` when given --request-timeout.
        std::fs::write(dir.path().join("readyz"), "ok").unwrap();
        std::fs::write(dir.path().join("readyz?timeout=10s"), "ok").unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let server = TlsServer {
            child,
            port,
            _dir: dir,
        };
        let t = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(t.elapsed().as_secs() < 10, "s_server did not come up");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kubectl_readyz(kubeconfig: &Path, port: u16, vip: &str) -> std::process::Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--server", &format!("https://127.0.0.1:{port}")])
        .args(["--tls-server-name", vip, "--request-timeout", "10s"])
        .args(["get", "--raw", "/readyz"])
        .output()
        .expect("kubectl is on the machine image (else Debian's kubernetes-client)")
}

/// Go's TLS client (kubectl) checks the VIP against the new apiserver certificate: it passes with
/// the new one and fails with the old one with the error operators met in the field.
#[test]
fn kubectl_reaches_the_vip_with_the_new_certificate_only() {
    let (_dir, root) = node("kubeadm");
    let c = change(&root, &["--vip", "10.21.22.100"]);
    let pki = root.join("etc/kubernetes/pki");
    let admin = c.new_file(&root, "etc/kubernetes/admin.conf");
    let new = c.new_file(&root, "etc/kubernetes/pki/apiserver.crt");
    let server = TlsServer::start(&new, &pki.join("apiserver.key"));
    let ok = kubectl_readyz(&admin, server.port, "10.21.22.100");
    assert!(
        ok.status.success(),
        "new certificate: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "ok");
    drop(server);
    let server = TlsServer::start(&pki.join("apiserver.crt"), &pki.join("apiserver.key"));
    let bad = kubectl_readyz(&admin, server.port, "10.21.22.100");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("x509: certificate is valid for") && err.contains("not 10.21.22.100"),
        "{err}"
    );
}

/// A rollout plan that cannot pass is proved on the bundle in memory: nothing is written.
#[test]
fn a_plan_that_cannot_pass_leaves_no_bundle() {
    let (_dir, root) = node("kubeadm");
    let bin = tools(root.parent().unwrap());
    let bundle = root.parent().unwrap().join("vip");
    let before = tree_digest(&root);
    let run = certs_env(
        [
            "change",
            "--root",
            root.to_str().unwrap(),
            "--vip",
            "10.21.22.100",
            "--now",
            NOW,
            "--out",
            bundle.to_str().unwrap(),
            // 127.0.0.1 is not in the apiserver certificate: the gate could never see it.
            "--health",
            "kube-apiserver=https://127.0.0.1:6443/readyz",
        ],
        &[("PATH", path_with(&bin))],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("does not cover 127.0.0.1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was written"), "{}", run.stderr);
    assert!(!bundle.exists());
    assert_eq!(before, tree_digest(&root));
}
