//! `certs rollout plan` on copies of the layout fixtures: the plan is bound to what the node's
//! own manifests, units and env files say (not to file names or fixed paths), and a plan whose
//! gates could never pass is refused before anything is touched. No endpoint is probed here:
//! planning and validation read files only.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{certs, certs_env, fixture, path_with, s, tree_digest};

/// A PATH dir with a `systemctl` that must never run during planning (it would leave a mark).
fn fake_systemctl(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mark = dir.join("systemctl-ran");
    let script = bin.join("systemctl");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", s(&mark)),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, mark)
}

fn reissue(targets: &[PathBuf], extra: &[&str], out: &Path) {
    let mut args: Vec<String> = vec!["reissue".into()];
    args.extend(targets.iter().map(|t| s(t)));
    args.extend(extra.iter().map(|a| a.to_string()));
    args.extend(["--out".to_string(), s(out)]);
    let run = certs(&args);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

fn plan_json(bundle: &Path, root: &Path, bin: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "rollout".to_string(),
        "plan".into(),
        s(bundle),
        "--root".into(),
        s(root),
        "-o".into(),
        "json".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let run = certs_env(&args, &[("PATH", path_with(bin))]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    run.json()
}

fn step<'a>(plan: &'a Value, component: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["component"] == component)
        .unwrap_or_else(|| panic!("no step {component} in {plan:#}"))
}

fn swapped(plan: &Value, step: &Value) -> Vec<String> {
    step["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let t = plan["files"][i.as_u64().unwrap() as usize]["target"]
                .as_str()
                .unwrap();
            Path::new(t)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

#[test]
fn kubespray_vip_bundle_is_a_systemd_etcd_with_client_cert_and_a_static_pod_apiserver() {
    let dir = fixture("kubespray");
    let root = dir.path();
    let (bin, mark) = fake_systemctl(root.parent().unwrap().join("ks-bin").as_path());
    let ssl = root.join("etc/ssl/etcd/ssl");
    let bundle = root.join("bundle");
    reissue(
        &[
            root.join("etc/kubernetes/ssl/apiserver.crt"),
            ssl.join("member-node1.pem"),
            ssl.join("node-node1.pem"),
        ],
        &["--add-san", "10.6.0.100"],
        &bundle,
    );
    let before = tree_digest(&root.join("etc"));
    let plan = plan_json(&bundle, root, &bin, &[]);
    let order: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["component"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["etcd", "kube-apiserver"], "{plan:#}");

    // etcd: the systemd unit from the node, its gate from /etc/etcd.env.
    let etcd = step(&plan, "etcd");
    assert_eq!(etcd["restart"], serde_json::json!({"systemd": "etcd"}));
    assert_eq!(swapped(&plan, etcd), ["member-node1.pem"]);
    let gate = &etcd["gates"][0];
    assert_eq!(gate["url"], "https://127.0.0.1:2379");
    assert_eq!(gate["path"], "/health");
    assert_eq!(gate["trust"]["ca"], s(&ssl.join("ca.pem")));
    assert!(
        gate["origin"]
            .as_str()
            .unwrap()
            .ends_with("etc/etcd.env ETCD_LISTEN_CLIENT_URLS"),
        "{gate}"
    );
    // ETCD_CLIENT_CERT_AUTH=true: the probe presents the apiserver's etcd client certificate.
    assert_eq!(gate["client"]["cert"], s(&ssl.join("node-node1.pem")));
    assert_eq!(gate["client"]["key"], s(&ssl.join("node-node1-key.pem")));
    assert!(gate["serves"].is_u64());

    // kube-apiserver: a static pod (kubespray's layout, whatever its cert dir is called), and
    // its --etcd-certfile restarts with it rather than as a file nobody reads.
    let api = step(&plan, "kube-apiserver");
    assert_eq!(
        api["restart"]["static-pod"],
        s(&root.join("etc/kubernetes/manifests/kube-apiserver.yaml"))
    );
    let mut files = swapped(&plan, api);
    files.sort();
    assert_eq!(files, ["apiserver.crt", "node-node1.pem"]);
    let gate = &api["gates"][0];
    assert_eq!(gate["url"], "https://10.6.0.11:6443");
    assert_eq!(gate["path"], "/readyz");
    assert_eq!(
        gate["trust"]["ca"],
        s(&root.join("etc/kubernetes/ssl/ca.crt"))
    );
    assert!(plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|st| st["component"] != "files-only"));

    // The text plan says where each step was read.
    let text = certs_env(
        ["rollout", "plan", &s(&bundle), "--root", &s(root)],
        &[("PATH", path_with(&bin))],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("etc/systemd/system/etcd.service]")
            && text.stdout.contains("presenting ")
            && text.stdout.contains("park and restore static pod manifest"),
        "{}",
        text.stdout
    );
    assert_eq!(
        before,
        tree_digest(&root.join("etc")),
        "planning changed the node"
    );
    assert!(!mark.exists(), "planning ran systemctl");
}

#[test]
fn binary_node_etcd_gate_uses_the_https_listener_its_unit_serves() {
    let dir = fixture("binary");
    let root = dir.path();
    let (bin, _) = fake_systemctl(&root.join("tools"));
    let ssl = root.join("etc/kubernetes/ssl");
    let bundle = root.join("bundle");
    reissue(
        &[ssl.join("kubernetes.pem"), ssl.join("etcd.pem")],
        &["--drop-san", "172.72.0.97"],
        &bundle,
    );
    let plan = plan_json(&bundle, root, &bin, &[]);
    let etcd = step(&plan, "etcd");
    assert_eq!(etcd["restart"], serde_json::json!({"systemd": "etcd"}));
    assert_eq!(swapped(&plan, etcd), ["etcd.pem"]);
    // --listen-client-urls=https://172.72.0.95:2379,http://127.0.0.1:2379: the loopback
    // listener is plain HTTP and could not show a certificate.
    assert_eq!(etcd["gates"][0]["url"], "https://172.72.0.95:2379");
    assert_eq!(etcd["gates"][0]["trust"]["ca"], s(&ssl.join("ca.pem")));
    // No --client-cert-auth in that unit: no client certificate.
    assert!(etcd["gates"][0].get("client").is_none());
    let api = step(&plan, "kube-apiserver");
    assert_eq!(
        api["restart"],
        serde_json::json!({"systemd": "kube-apiserver"})
    );
    assert_eq!(swapped(&plan, api), ["kubernetes.pem"]);
    // --anonymous-auth=false: /readyz needs a client; the unit's kubelet client is one.
    assert_eq!(api["gates"][0]["url"], "https://172.72.0.95:6443");
    assert_eq!(api["gates"][0]["client"]["cert"], s(&ssl.join("admin.pem")));
}

#[test]
fn overrides_must_name_a_restarted_component_and_restart_adds_one() {
    let dir = fixture("binary");
    let root = dir.path();
    let (bin, _) = fake_systemctl(&root.join("tools"));
    let ssl = root.join("etc/kubernetes/ssl");
    let bundle = root.join("bundle");
    reissue(
        &[ssl.join("etcd.pem")],
        &["--add-san", "etcd.local"],
        &bundle,
    );
    let args = |extra: &[&str]| {
        let mut a = vec![
            "rollout".to_string(),
            "plan".into(),
            s(&bundle),
            "--root".into(),
            s(root),
            "-o".into(),
            "json".into(),
        ];
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = certs_env(
        args(&[
            "--restart-cmd",
            "kube-apiserver=systemctl restart kube-apiserver",
        ]),
        &[("PATH", path_with(&bin))],
    );
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("--restart-cmd kube-apiserver")
            && run.stderr.contains("no changed file")
            && run.stderr.contains("--restart kube-apiserver"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    // Asked for, it restarts after etcd with nothing to swap, and keeps its gate.
    let plan = plan_json(
        &bundle,
        root,
        &bin,
        &[
            "--restart",
            "kube-apiserver",
            "--restart-cmd",
            "kube-apiserver=systemctl restart kube-apiserver",
        ],
    );
    let api = step(&plan, "kube-apiserver");
    assert!(api["files"].as_array().unwrap().is_empty());
    assert_eq!(
        api["restart"]["command"],
        "systemctl restart kube-apiserver"
    );
    assert_eq!(api["gates"][0]["path"], "/readyz");
    let run = certs_env(
        args(&["--restart", "kube-nothing"]),
        &[("PATH", path_with(&bin))],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("kube-nothing"), "{}", run.stderr);
}

/// A flat copy of etcd certificates (no node around them) and the binary profile, whose paths
/// do not exist here: every way the gate could not pass is refused at once, nothing touched.
#[test]
fn a_flat_directory_with_gates_that_cannot_pass_is_refused_and_untouched() {
    let dir = fixture("etcd-loopback");
    let flat = dir.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    let pki = dir.path().join("etc/ssl/etcd/ssl");
    for f in std::fs::read_dir(&pki).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, flat.join(f.file_name().unwrap())).unwrap();
    }
    let bundle = dir.path().join("bundle");
    reissue(
        &[flat.join("member-etcd1.pem")],
        &["--add-san", "etcd.example"],
        &bundle,
    );
    let marker = dir.path().join("restarted");
    let state = dir.path().join("state");
    let before = tree_digest(&flat);
    let base = |extra: &[String]| {
        let mut a: Vec<String> = [
            "rollout",
            "apply",
            &s(&bundle),
            "--profile",
            "binary",
            "--state-dir",
            &s(&state),
            "--restart-cmd",
            &format!("etcd=touch {}", s(&marker)),
            // A flat directory no unit or manifest names: the operator vouches for it.
            "--allow-dir",
            &s(&flat),
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().cloned());
        a
    };
    let cert = s(&flat.join("admin-etcd1.pem"));
    let key = s(&flat.join("admin-etcd1-key.pem"));
    let cases: Vec<(Vec<String>, &str)> = vec![
        // The profile's client certificate is at /etc/kubernetes/ssl/etcd.pem: not here.
        (
            vec![],
            "client certificate `/etc/kubernetes/ssl/etcd.pem` cannot be read",
        ),
        (
            vec![
                "--health".into(),
                "etcd=https://127.0.0.11:99999/health".into(),
            ],
            "99999",
        ),
        (
            vec![
                "--health".into(),
                "etcd=https://127.0.0.99:2379/health".into(),
                "--health-cert".into(),
                format!("etcd={cert}"),
                "--health-key".into(),
                format!("etcd={key}"),
            ],
            "does not cover 127.0.0.99",
        ),
        (
            vec![
                "--health".into(),
                "etcd=https://127.0.0.11:2379/health".into(),
                "--health-cert".into(),
                format!("etcd={cert}"),
                "--health-key".into(),
                format!("etcd={}", s(&flat.join("missing-key.pem"))),
            ],
            "client key",
        ),
        (
            vec![
                "--health".into(),
                "etcd=https://127.0.0.11:2379/health".into(),
                "--health-cert".into(),
                format!("etcd={cert}"),
                "--health-key".into(),
                format!("etcd={}", s(&flat.join("member-etcd2-key.pem"))),
            ],
            "does not pair",
        ),
    ];
    for (extra, want) in cases {
        for cmd in ["apply", "plan"] {
            let mut args = base(&extra);
            args[1] = cmd.into();
            let run = certs(&args);
            assert_eq!(run.code, 2, "{cmd} {extra:?}: {}{}", run.stdout, run.stderr);
            assert!(run.stderr.contains(want), "{cmd} {extra:?}: {}", run.stderr);
            assert!(!marker.exists(), "{cmd} {extra:?}: the restart command ran");
            assert!(
                !state.exists(),
                "{cmd} {extra:?}: state dir (lock, backup) created"
            );
            assert_eq!(
                before,
                tree_digest(&flat),
                "{cmd} {extra:?}: the tree changed"
            );
        }
    }
    // With a usable client, a covered host and a real port the plan passes (and still runs
    // nothing: `plan` never does).
    let mut ok = base(&[
        "--health".into(),
        "etcd=https://127.0.0.11:2379/health".into(),
        "--health-cert".into(),
        format!("etcd={cert}"),
        "--health-key".into(),
        format!("etcd={key}"),
    ]);
    ok[1] = "plan".into();
    let run = certs(&ok);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("verified against {}", s(&flat.join("ca.pem")))),
        "the gate's CA is the one bundle.json records: {}",
        run.stdout
    );
    assert!(!marker.exists() && !state.exists());
}

#[test]
fn kubeadm_node_static_pods_with_their_own_gates() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let (bin, _) = fake_systemctl(&root.join("tools"));
    let pki = root.join("etc/kubernetes/pki");
    let bundle = root.join("bundle");
    reissue(
        &[
            pki.join("apiserver.crt"),
            pki.join("etcd/server.crt"),
            root.join("etc/kubernetes/controller-manager.conf"),
        ],
        &["--add-san", "10.21.22.100"],
        &bundle,
    );
    let plan = plan_json(&bundle, root, &bin, &[]);
    assert_eq!(plan["schema"], "certs.plan/v1");
    assert_eq!(
        plan["files"][0]["mode"], "0644",
        "modes are octal strings, as in bundle.json"
    );
    let manifest = |n: &str| s(&root.join("etc/kubernetes/manifests").join(n));
    let etcd = step(&plan, "etcd");
    assert_eq!(etcd["restart"]["static-pod"], manifest("etcd.yaml"));
    assert_eq!(etcd["gates"][0]["url"], "https://127.0.0.1:2379");
    assert_eq!(
        etcd["gates"][0]["client"]["cert"],
        s(&pki.join("etcd/healthcheck-client.crt"))
    );
    assert_eq!(etcd["gates"][0]["trust"]["ca"], s(&pki.join("etcd/ca.crt")));
    let api = step(&plan, "kube-apiserver");
    assert_eq!(
        api["restart"]["static-pod"],
        manifest("kube-apiserver.yaml")
    );
    // The advertise address, which the old and the new certificate both cover.
    assert_eq!(api["gates"][0]["url"], "https://10.21.22.73:6443");
    // The controller-manager restarts because its kubeconfig changed; it serves a certificate
    // it made itself, so its gate is liveness on loopback, and the plan says so.
    let kcm = step(&plan, "kube-controller-manager");
    assert_eq!(
        kcm["restart"]["static-pod"],
        manifest("kube-controller-manager.yaml")
    );
    assert_eq!(kcm["gates"][0]["url"], "https://127.0.0.1:10257");
    assert_eq!(kcm["gates"][0]["trust"], "self-signed");
    assert!(kcm["gates"][0]["serves"].is_null());
}

/// A bundle of edited configuration files (what `certs change` writes for `--etcd-servers`,
/// `--initial-cluster` or `/etc/etcd.env`), written by hand here.
fn config_bundle(dir: &Path, edits: &[(&Path, String)]) -> PathBuf {
    use sha2_free::sha256;
    let bundle = dir.join("config-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let mut files = Vec::new();
    for (n, (target, text)) in edits.iter().enumerate() {
        let name = format!("{n}-{}", target.file_name().unwrap().to_string_lossy());
        std::fs::write(bundle.join(&name), text).unwrap();
        files.push(serde_json::json!({
            "bundle_path": name, "target": target, "kind": "config", "role": "unknown",
            "components": [], "mode": "0644",
            "old_sha256": sha256(&std::fs::read(target).unwrap()),
            "new_sha256": sha256(text.as_bytes()),
        }));
    }
    let manifest = serde_json::json!({
        "schema": "certs.bundle/v1", "created": "2026-11-29T00:00:00Z",
        "ca": {"certificate": "", "subject": ""}, "files": files,
    });
    std::fs::write(
        bundle.join("bundle.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    bundle
}

/// SHA-256 through openssl, so the test does not lean on the crate's own hashing.
mod sha2_free {
    pub fn sha256(bytes: &[u8]) -> String {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), bytes).unwrap();
        let out = crate::util::openssl(["dgst", "-sha256", "-r", tmp.path().to_str().unwrap()]);
        out.split_whitespace().next().unwrap().to_string()
    }
}

#[test]
fn changed_units_env_files_and_proxy_configs_restart_what_reads_them() {
    // binary: the etcd unit's --initial-cluster and kube-lb's nginx config change.
    let dir = fixture("binary");
    let root = dir.path();
    let (bin, _) = fake_systemctl(&root.join("tools"));
    let unit = root.join("etc/systemd/system/etcd.service");
    let lb = root.join("etc/kube-lb/conf/kube-lb.conf");
    let unit_text = std::fs::read_to_string(&unit)
        .unwrap()
        .replace(",etcd3=https://172.72.0.97:2380", "");
    let lb_text = std::fs::read_to_string(&lb)
        .unwrap()
        .replace("        server 172.72.0.97:6443;\n", "");
    let bundle = config_bundle(root, &[(&unit, unit_text), (&lb, lb_text)]);
    let plan = plan_json(&bundle, root, &bin, &[]);
    let etcd = step(&plan, "etcd");
    assert_eq!(
        etcd["restart"],
        serde_json::json!({"systemd-reload": "etcd"}),
        "a changed unit needs a daemon-reload"
    );
    assert_eq!(swapped(&plan, etcd), ["etcd.service"]);
    let lb_step = step(&plan, "kube-lb");
    assert_eq!(
        lb_step["restart"],
        serde_json::json!({"systemd": "kube-lb"})
    );
    assert_eq!(swapped(&plan, lb_step), ["kube-lb.conf"]);
    assert!(lb_step["note"]
        .as_str()
        .unwrap()
        .contains("no health endpoint"));
    let text = certs_env(
        ["rollout", "plan", &s(&bundle), "--root", &s(root)],
        &[("PATH", path_with(&bin))],
    );
    assert!(
        text.stdout
            .contains("systemctl daemon-reload, then systemctl restart etcd"),
        "{}",
        text.stdout
    );

    // kubespray: /etc/etcd.env restarts etcd, with no daemon-reload (systemd reads it at start).
    let dir = fixture("kubespray");
    let root = dir.path();
    let env = root.join("etc/etcd.env");
    let env_text = std::fs::read_to_string(&env)
        .unwrap()
        .replace(",etcd3=https://10.6.0.13:2380", "");
    let bundle = config_bundle(root, &[(&env, env_text)]);
    let plan = plan_json(&bundle, root, &bin, &[]);
    let etcd = step(&plan, "etcd");
    assert_eq!(etcd["restart"], serde_json::json!({"systemd": "etcd"}));
    assert_eq!(swapped(&plan, etcd), ["etcd.env"]);
    // Its gate still proves the member: etcd's certificate is unchanged, so health only.
    assert_eq!(etcd["gates"][0]["url"], "https://127.0.0.1:2379");
    assert!(etcd["gates"][0]["serves"].is_null());
}
