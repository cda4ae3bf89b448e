//! `certs cluster rotate-ca` on a kubeadm HA control plane: three hosts made from the kubeadm
//! fixture, every one holding the cluster CA's key (`ca.key`, as kubeadm HA masters do) and
//! kubeconfigs embedding a client key, run by real `ansible-playbook` (`ansible_connection:
//! local`, a node root per host as `certs_root`). The rollout installs with a flat profile on
//! roots without manifests and units, as tests/cli/rotate_ca/stages.rs does: nothing restarted,
//! nothing probed. After switch every leaf and every kubeconfig's client certificate (read by
//! kubectl) verifies against the new CA with its key unchanged; the new CA key is on exactly the
//! hosts that held the old one, 0600, and in no playbook output; after finish no file holds the
//! old CA; a second run of each stage changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::stages::files_holding;
use super::{s, verify};
use crate::cluster::{ansible_playbook, key_copies, recap};
use crate::util::{certs, fixture};

const HOSTS: usize = 3;
const PKI: &str = "etc/kubernetes/pki";
/// The leaves of the cluster CA on a kubeadm master, as files.
const LEAVES: &[&str] = &[
    "etc/kubernetes/pki/apiserver.crt",
    "etc/kubernetes/pki/apiserver-kubelet-client.crt",
    "var/lib/kubelet/pki/kubelet-client-current.pem",
];
/// The kubeconfigs whose client certificate the cluster CA signed.
const KUBECONFIGS: &[&str] = &[
    "etc/kubernetes/admin.conf",
    "etc/kubernetes/super-admin.conf",
    "etc/kubernetes/controller-manager.conf",
    "etc/kubernetes/scheduler.conf",
    "etc/kubernetes/kubelet.conf",
];

/// A kube-apiserver serving certificate as kubeadm makes one for master `host` at `ip` (its
/// subject, SANs, usages), with a new key written to `key_out` (0600), signed by `ca`/`ca_key`
/// (openssl, not certs): the PEM.
fn apiserver_cert(ca: &Path, ca_key: &Path, host: &str, ip: &str, key_out: &Path) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (csr, ext, crt) = (
        dir.path().join("csr"),
        dir.path().join("ext"),
        dir.path().join("crt"),
    );
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=DNS:{host},DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:{ip}\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n\
             basicConstraints=critical,CA:FALSE\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = Command::new("openssl").args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "req",
        "-new",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=kube-apiserver",
        "-keyout",
        &s(key_out),
        "-out",
        &s(&csr),
    ]);
    std::fs::set_permissions(key_out, std::fs::Permissions::from_mode(0o600)).unwrap();
    let serial = format!("0x5eed{:04x}", ip.bytes().map(u32::from).sum::<u32>());
    run(&[
        "x509",
        "-req",
        "-in",
        &s(&csr),
        "-CA",
        &s(ca),
        "-CAkey",
        &s(ca_key),
        "-set_serial",
        &serial,
        "-days",
        "365",
        "-extfile",
        &s(&ext),
        "-out",
        &s(&crt),
    ]);
    std::fs::read(&crt).unwrap()
}

struct Ha {
    _dirs: Vec<tempfile::TempDir>,
    w: PathBuf,
    roots: Vec<PathBuf>,
    inventory: PathBuf,
    old: PathBuf,
}

impl Ha {
    fn new() -> Ha {
        let work = tempfile::tempdir().unwrap();
        let w = work.path().to_path_buf();
        let profile = w.join("flat.json");
        std::fs::write(&profile, r#"{"name": "flat", "components": []}"#).unwrap();
        let mut dirs = vec![work];
        let mut roots = Vec::new();
        let mut hosts = String::new();
        for n in 1..=HOSTS {
            let d = fixture("kubeadm");
            let root = d.path().to_path_buf();
            for strip in ["etc/kubernetes/manifests", "usr/lib/systemd"] {
                std::fs::remove_dir_all(root.join(strip)).unwrap();
            }
            let pki = root.join(PKI);
            assert!(pki.join("ca.key").is_file());
            if n > 1 {
                // Each master its own apiserver certificate and key (its name and address).
                let pem = apiserver_cert(
                    &pki.join("ca.crt"),
                    &pki.join("ca.key"),
                    &format!("master{n}"),
                    &format!("127.0.0.1{n}"),
                    &pki.join("apiserver.key"),
                );
                std::fs::write(pki.join("apiserver.crt"), pem).unwrap();
            }
            let state = w.join(format!("state-{n}"));
            std::fs::create_dir_all(&state).unwrap();
            hosts.push_str(&format!(
                "    node{n}:\n      ansible_connection: local\n      ansible_python_interpreter: /usr/bin/python3\n      ip: 127.0.0.1{n}\n      certs_root: {root}\n      certs_bin: {state}/certs\n      certs_state_dir: {state}\n      certs_rollout_args: [\"--profile\", \"{profile}\"]\n",
                root = s(&root),
                state = s(&state),
                profile = s(&profile),
            ));
            roots.push(root);
            dirs.push(d);
        }
        let inventory = w.join("hosts.yaml");
        std::fs::write(
            &inventory,
            format!("all:\n  hosts:\n{hosts}  children:\n    kube_control_plane:\n      hosts:\n        node1:\n        node2:\n        node3:\n    etcd:\n      hosts:\n        node1:\n        node2:\n        node3:\n"),
        )
        .unwrap();
        let old = w.join("old-ca.crt");
        std::fs::copy(roots[0].join(PKI).join("ca.crt"), &old).unwrap();
        Ha {
            _dirs: dirs,
            w,
            roots,
            inventory,
            old,
        }
    }

    fn state(&self, n: usize) -> PathBuf {
        self.w.join(format!("state-{n}"))
    }

    /// Renders `certs cluster rotate-ca STAGE`, syntax-checks it and runs it.
    fn run(&self, stage: &str) -> (bool, String) {
        let out = self.w.join(format!("rotate-{stage}"));
        if !out.exists() {
            let r = certs([
                "cluster",
                "rotate-ca",
                stage,
                "--inventory",
                &s(&self.inventory),
                "--ca-cert",
                &s(&self.old),
                "--certs-binary",
                env!("CARGO_BIN_EXE_certs"),
                "--out",
                &s(&out),
            ]);
            assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
            let (ok, log) = ansible_playbook(&out, &self.inventory, &["--syntax-check"]);
            assert!(ok, "{log}");
        }
        ansible_playbook(&out, &self.inventory, &[])
    }

    fn stage_of(&self, n: usize) -> String {
        let rot = self.state(n).join("rotate-ca");
        let r = certs([
            "rotate-ca",
            "status",
            &s(&rot.join("old-ca.pem")),
            "--root",
            &s(&self.roots[n - 1]),
            "--new-ca",
            &s(&rot.join("new-ca.pem")),
            "-o",
            "json",
        ]);
        r.json()["stage"].as_str().unwrap().to_string()
    }
}

/// What kubectl reads as the client certificate of `kubeconfig` (embedded, or the file it
/// names, under `root`), written to `out` as PEM.
fn client_cert_by_kubectl(kubeconfig: &Path, root: &Path, out: &Path) {
    use base64::Engine;
    let view = |path: &str| {
        let o = Command::new("kubectl")
            .args(["config", "view", "--raw", "--kubeconfig"])
            .arg(kubeconfig)
            .args(["-o", &format!("jsonpath={{.users[0].user.{path}}}")])
            .env_remove("KUBECONFIG")
            .output()
            .expect("kubectl is installed");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let data = view("client-certificate-data");
    let pem = if data.is_empty() {
        let file = view("client-certificate");
        std::fs::read(root.join(file.trim_start_matches('/'))).unwrap()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap()
    };
    std::fs::write(out, pem).unwrap();
}

/// `openssl x509 -noout -subject -pubkey -ext subjectAltName,keyUsage,extendedKeyUsage` of a
/// PEM file: what a leaf keeps across the switch.
fn kept(pem: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-pubkey", "-ext"])
        .arg("subjectAltName,keyUsage,extendedKeyUsage")
        .arg("-in")
        .arg(pem)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every leaf and kubeconfig client certificate of host `n`, as PEM files under `dir`.
fn leaves_of(ha: &Ha, n: usize, dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::create_dir_all(dir).unwrap();
    let root = &ha.roots[n - 1];
    let mut out = Vec::new();
    for rel in LEAVES {
        let at = dir.join(rel.replace('/', "_"));
        std::fs::copy(root.join(rel), &at).unwrap();
        out.push((rel.to_string(), at));
    }
    for rel in KUBECONFIGS {
        let at = dir.join(rel.replace('/', "_"));
        client_cert_by_kubectl(&root.join(rel), root, &at);
        out.push((rel.to_string(), at));
    }
    out
}

#[test]
fn a_kubeadm_ha_control_plane_rotates_its_cluster_ca_through_certs_cluster() {
    let ha = Ha::new();
    let old_der = pem::parse(std::fs::read(&ha.old).unwrap())
        .unwrap()
        .into_contents();
    let old_key = std::fs::read(ha.roots[0].join(PKI).join("ca.key")).unwrap();
    let before: Vec<Vec<(String, String)>> = (1..=HOSTS)
        .map(|n| {
            leaves_of(&ha, n, &ha.w.join(format!("before-{n}")))
                .into_iter()
                .map(|(rel, f)| {
                    assert!(verify(&ha.old, &f), "node{n} {rel}: of the old CA");
                    (rel, kept(&f))
                })
                .collect()
        })
        .collect();
    // Each master serves its own apiserver certificate (another key and address): the CA host
    // signs each node's own leaves, and each is spliced on its node.
    assert_ne!(before[0][0], before[1][0]);
    assert_ne!(before[1][0], before[2][0]);
    let mut logs = String::new();
    for (stage, after) in [
        ("trust", "trusted"),
        ("switch", "switched"),
        ("finish", "finished"),
    ] {
        let (ok, log) = ha.run(stage);
        assert!(ok, "{stage}: {log}");
        let r = recap(&log);
        assert_eq!(r.len(), HOSTS, "{log}");
        assert!(r.iter().all(|(_, c, f)| *c > 0 && *f == 0), "{r:?}\n{log}");
        for n in 1..=HOSTS {
            assert!(
                log.contains(&format!("node{n}: stage {after} after {stage}")),
                "{stage}: node{n}\n{log}"
            );
            assert_eq!(ha.stage_of(n), after, "{stage}: node{n}");
        }
        // Once more: nothing changes on any host.
        let (ok, again) = ha.run(stage);
        assert!(ok, "{stage} again: {again}");
        let r = recap(&again);
        assert!(
            r.iter().all(|(_, c, f)| *c == 0 && *f == 0),
            "{stage} again: {r:?}\n{again}"
        );
        logs.push_str(&log);
        logs.push_str(&again);

        if stage == "switch" {
            let new_ca = ha.state(1).join("rotate-ca/new-ca.pem");
            for n in 1..=HOSTS {
                let got = leaves_of(&ha, n, &ha.w.join(format!("after-{n}")));
                for ((rel, f), (_, was)) in got.iter().zip(&before[n - 1]) {
                    assert!(verify(&new_ca, f), "node{n} {rel}: of the new CA");
                    assert!(!verify(&ha.old, f), "node{n} {rel}: not of the old CA");
                    assert_eq!(&kept(f), was, "node{n} {rel}: subject, key, SANs, usages");
                }
            }
        }
    }

    // The new CA key: on every host that held the old one (all three), as its ca.key, 0600.
    let made = ha.state(1).join("rotate-ca/new-ca");
    let key_file = std::fs::read_dir(&made)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("PRIVATE KEY")))
        .unwrap();
    let key = std::fs::read(&key_file).unwrap();
    assert_ne!(key, old_key);
    for (i, root) in ha.roots.iter().enumerate() {
        let at = root.join(PKI).join("ca.key");
        assert_eq!(std::fs::read(&at).unwrap(), key, "node{}", i + 1);
        assert_eq!(
            std::fs::metadata(&at).unwrap().permissions().mode() & 0o777,
            0o600,
            "node{}",
            i + 1
        );
        // Every copy of it on the host (its ca.key, the switch bundle, the rollout's state) is
        // 0600, and no temporary copy is left.
        let state = ha.state(i + 1);
        let places: Vec<&Path> = vec![root, &state];
        for p in key_copies(&places, &key) {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        assert!(!state.join("rotate-ca/new-ca-key.pem").exists());
    }
    // Never on the controller's playbook directories, never in the playbook's output.
    let controller: Vec<PathBuf> = ["trust", "switch", "finish"]
        .iter()
        .map(|st| ha.w.join(format!("rotate-{st}")))
        .collect();
    let places: Vec<&Path> = controller.iter().map(PathBuf::as_path).collect();
    assert_eq!(key_copies(&places, &key), Vec::<PathBuf>::new());
    let body: String = String::from_utf8_lossy(&key)
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        !logs.contains(&body),
        "the new CA key in the playbook output"
    );

    // After finish: no file on any host holds the old CA.
    for (i, root) in ha.roots.iter().enumerate() {
        assert_eq!(
            files_holding(root, &old_der),
            Vec::<PathBuf>::new(),
            "node{}",
            i + 1
        );
    }
}

/// `certs rotate-ca switch --signed`: each given certificate must replace a leaf of the old CA on
/// the node (same subject, SANs, usages and public key, signed by the new CA), every such leaf
/// must have one, and a node keeping the old CA's key needs the new one: otherwise refused, one
/// line per problem, no bundle written.
#[test]
fn switch_with_signed_certificates_refuses_any_that_do_not_replace_a_leaf() {
    let ha = Ha::new();
    let w = &ha.w;
    let root = &ha.roots[0];
    let profile = w.join("flat.json");
    let trusted = w.join("trust");
    let r = certs([
        "rotate-ca",
        "trust",
        &s(&ha.old),
        "--root",
        &s(root),
        "--out",
        &s(&trusted),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let new_dir = w.join("trust-new-ca");
    let find = |marker: &str| {
        std::fs::read_dir(&new_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(marker)))
            .unwrap()
    };
    let (new_ca, new_key) = (find("CERTIFICATE"), find("PRIVATE KEY"));
    let r = certs([
        "rollout",
        "apply",
        &s(&trusted),
        "--root",
        &s(root),
        "--profile",
        &s(&profile),
        "--state-dir",
        &s(&w.join("st")),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    // The node's leaves (certificates only), signed on "the CA host".
    let leaves = certs([
        "rotate-ca",
        "leaves",
        &s(&ha.old),
        "--root",
        &s(root),
        "--new-ca",
        &s(&new_ca),
        "-o",
        "json",
    ]);
    assert_eq!(leaves.code, 0, "{}", leaves.stderr);
    let leaves = leaves.json();
    assert_eq!(leaves["needs_new_ca_key"], true);
    let pem_text = leaves["certificates"].as_str().unwrap().to_string();
    assert!(!pem_text.contains("PRIVATE KEY"));
    // 3 leaf files and 4 kubeconfigs embedding one (kubelet.conf names kubelet-client-current.pem).
    assert_eq!(pem_text.matches("BEGIN CERTIFICATE").count(), 7, "{leaves}");
    let leaves_file = w.join("leaves.pem");
    std::fs::write(&leaves_file, &pem_text).unwrap();
    let sign = |file: &Path| {
        certs([
            "cluster",
            "rotate-ca-sign",
            "--leaves",
            &s(file),
            "--ca-cert",
            &s(&ha.old),
            "--new-ca",
            &s(&new_ca),
            "--new-ca-key",
            &s(&new_key),
        ])
    };
    let signed = sign(&leaves_file);
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    let signed_file = w.join("signed.pem");
    std::fs::write(&signed_file, &signed.stdout).unwrap();

    let out = w.join("switch");
    let switch = |signed: &Path, key: bool| {
        let mut args = vec![
            "rotate-ca".to_string(),
            "switch".into(),
            s(&ha.old),
            "--root".into(),
            s(root),
            "--new-ca".into(),
            s(&new_ca),
            "--signed".into(),
            s(signed),
            "--out".into(),
            s(&out),
        ];
        if key {
            args.extend(["--new-ca-key".into(), s(&new_key)]);
        }
        certs(args)
    };
    let refused = |r: crate::util::Run, why: &str| {
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(why), "{why}: {}", r.stderr);
        assert!(!out.exists());
    };
    // The node keeps ca.key: without the new key its signing file cannot switch.
    refused(
        switch(&signed_file, false),
        "etc/kubernetes/pki/ca.crt`: a signing file of the old CA (its key `",
    );
    // The leaves as they are (the old CA's) given as signed.
    refused(
        switch(&leaves_file, true),
        "expected a certificate of the new CA replacing a leaf of the old CA on this node, found a certificate issued by `CN=kubernetes`",
    );
    // One leaf left out: that leaf has none.
    let blocks: Vec<&str> = signed
        .stdout
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    let short = w.join("short.pem");
    std::fs::write(&short, blocks[1..].concat()).unwrap();
    refused(
        switch(&short, true),
        "with this leaf's subject, SANs, usages and public key, valid now; found none",
    );
    // A certificate of the new CA with the apiserver's subject, SANs and usages but another
    // key.
    let other = w.join("other.pem");
    let mut foreign = signed.stdout.clone().into_bytes();
    foreign.extend(apiserver_cert(
        &new_ca,
        &new_key,
        "master1",
        "10.21.22.73",
        &w.join("foreign.key"),
    ));
    std::fs::write(&other, foreign).unwrap();
    refused(switch(&other, true), "`CN=kube-apiserver` (serial 5EED");
    let r = switch(&other, true);
    assert!(
        r.stderr.contains("found one that matches none of them"),
        "{}",
        r.stderr
    );
    // The CA host signs leaves of the old CA only.
    let r = sign(&signed_file);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("expected a leaf of the CA being replaced"),
        "{}",
        r.stderr
    );

    // As given: a bundle, every leaf the one the CA host signed.
    let r = switch(&signed_file, true);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(out.join("bundle.json").is_file());
}
