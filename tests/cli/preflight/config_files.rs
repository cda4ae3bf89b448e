//! Config files that are odd or unreadable, a kubeasz VIP with a port, and the state directory
//! probed, never created.

use super::*;

/// A proxy config or unit that is odd (a Latin-1 byte, UTF-16, tabs, a one-line block, an
/// `include`) is still read, and one that cannot be read fails: never a silent pass.
#[test]
fn odd_or_unreadable_config_files_fail_the_retirement_never_pass() {
    let utf16 = |t: &str| -> Vec<u8> {
        [0xFF, 0xFE]
            .into_iter()
            .chain(t.encode_utf16().flat_map(u16::to_le_bytes))
            .collect()
    };
    type Variant = (&'static str, &'static str, Box<dyn Fn(&Path)>);
    let lb = "etc/kube-lb/conf/kube-lb.conf";
    let api = "etc/systemd/system/kube-apiserver.service";
    let rewrite =
        move |rel: &'static str, f: Box<dyn Fn(String) -> Vec<u8>>| -> Box<dyn Fn(&Path)> {
            Box::new(move |root: &Path| {
                let p = root.join(rel);
                let text = std::fs::read_to_string(&p).unwrap();
                std::fs::write(&p, f(text)).unwrap();
            })
        };
    let variants: Vec<Variant> = vec![
        (
            "latin-1 in the proxy config",
            "proxy-upstream",
            rewrite(
                lb,
                Box::new(|t| {
                    let mut b = b"# r\xe9partiteur\n".to_vec();
                    b.extend(t.into_bytes());
                    b
                }),
            ),
        ),
        (
            "utf-16 proxy config",
            "proxy-upstream",
            rewrite(lb, Box::new(move |t| utf16(&t))),
        ),
        (
            "tabs",
            "proxy-upstream",
            rewrite(
                lb,
                Box::new(|t| {
                    t.replace("        server ", "\tserver\t")
                        .replace("    upstream backend {", "\tupstream\tbackend\t{")
                        .into_bytes()
                }),
            ),
        ),
        (
            "one-line upstream",
            "proxy-upstream",
            rewrite(
                lb,
                Box::new(|t| {
                    t.replace(
                "    upstream backend {\n        server 172.72.0.95:6443;\n        server 172.72.0.96:6443;\n        server 172.72.0.97:6443;\n    }",
                "    upstream backend { server 172.72.0.95:6443; server 172.72.0.96:6443; server 172.72.0.97:6443; }",
            )
            .into_bytes()
                }),
            ),
        ),
        (
            "over 1 MiB",
            "config-unreadable",
            rewrite(
                lb,
                Box::new(|t| {
                    format!(
                        "{}{t}",
                        "# padding padding padding padding padding padding padding\n"
                            .repeat(20_000)
                    )
                    .into_bytes()
                }),
            ),
        ),
        (
            "latin-1 in the unit",
            "etcd-servers-flag",
            rewrite(
                api,
                Box::new(|t| {
                    let mut b = b"# caf\xe9\n".to_vec();
                    b.extend(t.into_bytes());
                    b
                }),
            ),
        ),
        (
            "utf-16 unit",
            "etcd-servers-flag",
            rewrite(api, Box::new(move |t| utf16(&t))),
        ),
        (
            "an included upstream",
            "proxy-upstream",
            Box::new(|root: &Path| {
                let p = root.join("etc/kube-lb/conf/kube-lb.conf");
                let text = std::fs::read_to_string(&p).unwrap();
                let start = text.find("    upstream backend {").unwrap();
                let end = text[start..].find("    }\n").unwrap() + start + 6;
                let inc = root.join("srv/lb/upstreams");
                std::fs::create_dir_all(&inc).unwrap();
                std::fs::write(inc.join("apiservers.conf"), &text[start..end]).unwrap();
                let out = format!(
                    "{}    include /srv/lb/upstreams/*.conf;\n{}",
                    &text[..start],
                    &text[end..]
                );
                std::fs::write(&p, out).unwrap();
            }),
        ),
    ];
    for (what, id, break_it) in variants {
        let dir = fixture("binary");
        let root = dir.path();
        break_it(root);
        let args: Vec<String> = [
            "--root",
            &s(root),
            "--state-dir",
            &s(&root.join("state")),
            "--retire",
            "172.72.0.96",
        ]
        .map(String::from)
        .to_vec();
        let (code, report) = preflight(&args);
        assert_eq!(code, 1, "{what}: {report}");
        assert!(
            ids(&report).0.contains(id),
            "{what}: expected {id} to fail: {report}"
        );
        let msg = messages(&report, id);
        let file = if id == "etcd-servers-flag" {
            "kube-apiserver.service"
        } else if what == "an included upstream" {
            "apiservers.conf"
        } else {
            "kube-lb.conf"
        };
        assert!(msg.contains(file), "{what}: {msg}");
    }
}

/// kubeasz VIP move to 192.168.1.40:8443: `/root/.kube/config` is read without being named,
/// and every fix keeps port 8443; the kube-lb kubeconfig on 127.0.0.1 and the
/// controller-manager's on its own apiserver stay.
#[test]
fn kubeasz_vip_with_a_port_keeps_it_in_every_fix() {
    let dir = fixture("kubeasz-ecdsa");
    let root = dir.path();
    let proxy_kc =
        std::fs::read_to_string(root.join("etc/kubernetes/kube-proxy.kubeconfig")).unwrap();
    std::fs::create_dir_all(root.join("root/.kube")).unwrap();
    std::fs::write(
        root.join("root/.kube/config"),
        proxy_kc.replace("https://127.0.0.1:6443", "https://192.168.1.39:8443"),
    )
    .unwrap();
    // The apiserver of this node (192.168.1.1) and a controller-manager kubeconfig on it.
    let unit_dir = root.join("etc/systemd/system");
    std::fs::create_dir_all(&unit_dir).unwrap();
    std::fs::write(
        unit_dir.join("kube-apiserver.service"),
        "[Service]\nExecStart=/usr/local/bin/kube-apiserver \\\n  --advertise-address=192.168.1.1 \\\n  --tls-cert-file=/etc/kubernetes/ssl/kubernetes.pem\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/kubernetes/kube-controller-manager.kubeconfig"),
        proxy_kc
            .replace("https://127.0.0.1:6443", "https://192.168.1.1:6443")
            .replace("kube-proxy", "system:kube-controller-manager"),
    )
    .unwrap();
    let args = |vip: &str| -> Vec<String> {
        [
            "--root",
            &s(root),
            "--vip",
            vip,
            "--offline",
            "--state-dir",
            &s(&root.join("state")),
        ]
        .map(String::from)
        .to_vec()
    };
    let (code, report) = preflight(&args("192.168.1.40:8443"));
    assert_eq!(code, 1, "{report}");
    let vip = fixes(&report, "kubeconfig-vip");
    assert_eq!(vip.len(), 1, "{report}");
    assert!(
        vip[0].contains("root/.kube/config")
            && vip[0].ends_with("--server=https://192.168.1.40:8443"),
        "{vip:?}"
    );
    let stays = messages(&report, "kubeconfig-vip");
    assert!(
        stays.contains("kube-controller-manager.kubeconfig (cluster kubernetes) stays on this node's apiserver"),
        "{stays}"
    );
    assert!(
        !report.to_string().contains("192.168.1.40:6443"),
        "{report}"
    );
    assert!(
        fixes(&report, "vip-san")[0].ends_with("--add-san 192.168.1.40"),
        "{report}"
    );
    // Retiring the master it points at moves it to the VIP, port included.
    let mut retire = args("192.168.1.40:8443");
    retire.extend(["--retire".into(), "192.168.1.39".into()]);
    let (_, report) = preflight(&retire);
    assert_eq!(
        fixes(&report, "kubeconfig-retired"),
        [format!(
            "kubectl --kubeconfig {} config set-cluster kubernetes --server=https://192.168.1.40:8443",
            s(&root.join("root/.kube/config"))
        )],
        "{report}"
    );
    // No port given: 6443.
    let (_, report) = preflight(&args("192.168.1.40"));
    assert!(
        fixes(&report, "kubeconfig-vip")[0].ends_with("--server=https://192.168.1.40:6443"),
        "{report}"
    );
}

/// preflight checks that the state directory could be created, and does not create it.
#[test]
fn the_state_dir_is_probed_not_created() {
    let dir = fixture("kubeadm");
    let root = dir.path();
    let state = root.join("var/lib/certs/state");
    let run = |state: &Path| {
        preflight(&["--root", &s(root), "--now", NOW, "--state-dir", &s(state)].map(String::from))
    };
    let (_, report) = run(&state);
    assert!(!state.exists() && !root.join("var/lib/certs").exists());
    assert_eq!(statuses(&report, "backup-dir"), ["pass"], "{report}");
    let msg = messages(&report, "backup-dir");
    assert!(
        msg.contains("does not exist yet")
            && msg.contains(&format!("{} where", s(&root.join("var/lib")))),
        "{msg}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(root.join("var/lib"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with(".certs-probe"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Under a file: it can never be created.
    let (code, report) = run(&root.join("etc/kubernetes/admin.conf/state"));
    assert_eq!(code, 1);
    assert!(
        messages(&report, "backup-dir")
            .to_lowercase()
            .contains("not a directory"),
        "{report}"
    );
}
