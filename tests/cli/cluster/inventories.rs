//! Rendering kubespray and kubeasz inventories, and refusing bad ones.

use super::*;

#[test]
fn renders_kubespray_and_kubeasz_inventories_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("hosts.ini");
    std::fs::write(
        &inv,
        "[all]\nnode1 ip=10.6.0.11 ansible_connection=local\nnode2 ip=10.6.0.12 ansible_connection=local\nnode3 ip=10.6.0.13 ansible_connection=local\nnode4 ip=10.6.0.14 ansible_connection=local\n[kube_control_plane]\nnode1\nnode2\nnode3\n[etcd]\nnode1\nnode2\nnode3\n[kube_node]\nnode4\n[k8s_cluster:children]\nkube_control_plane\nkube_node\n",
    )
    .unwrap();
    let out = dir.path().join("pb");
    let run = certs([
        "cluster",
        "--inventory",
        &s(&inv),
        "--retire",
        "node3",
        "--out",
        &s(&out),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("ansible-playbook -i"), "{}", run.stdout);
    let vars = std::fs::read_to_string(out.join("vars.yml")).unwrap();
    assert!(
        vars.contains("certs_change_args: [\"--retire\", \"10.6.0.13\"]"),
        "{vars}"
    );
    assert!(
        vars.contains("certs_nodes: [\"node1\", \"node2\", \"node4\"]"),
        "{vars}"
    );
    let pb = std::fs::read_to_string(out.join("playbook.yml")).unwrap();
    assert!(
        pb.contains("hosts: [\"node1\", \"node2\"]\n  serial: 1"),
        "{pb}"
    );
    let (ok, log) = ansible_playbook(&out, &inv, &["--syntax-check"]);
    assert!(ok, "{log}");
    // ansible-lint when installed (tests/debian.sh installs it from PyPI into a venv when it
    // can): run with its own directory first on PATH, so it uses the ansible it came with.
    let lint_bin = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|d| d.join("ansible-lint").is_file()));
    let lint = match &lint_bin {
        Some(dir) => Command::new(dir.join("ansible-lint"))
            .current_dir(&out)
            .env("PATH", crate::util::path_with(dir))
            .args(["--offline", "--nocolor", "playbook.yml"])
            .output(),
        None => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    match lint {
        Ok(o) => assert!(
            o.status.success(),
            "ansible-lint:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("ansible-lint not installed: skipped"),
    }

    // kubeasz: hosts by address, kube_master.
    let asz = dir.path().join("kubeasz.ini");
    std::fs::write(
        &asz,
        "[etcd]\n192.168.1.1 NODE_NAME=etcd1\n192.168.1.2 NODE_NAME=etcd2\n192.168.1.3 NODE_NAME=etcd3\n\n[kube_master]\n192.168.1.1 k8s_nodename='master-01'\n192.168.1.2 k8s_nodename='master-02'\n192.168.1.3 k8s_nodename='master-03'\n\n[kube_node]\n192.168.1.4 k8s_nodename='worker-01'\n\n[all:vars]\nSECURE_PORT=\"6443\"\n",
    )
    .unwrap();
    let out2 = dir.path().join("pb2");
    let run = certs([
        "cluster",
        "--inventory",
        &s(&asz),
        "--retire",
        "master-03",
        "--vip",
        "192.168.1.40:8443",
        "--out",
        &s(&out2),
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let vars = std::fs::read_to_string(out2.join("vars.yml")).unwrap();
    assert!(
        vars.contains(
            "certs_change_args: [\"--vip\", \"192.168.1.40:8443\", \"--retire\", \"192.168.1.3\"]"
        ),
        "{vars}"
    );
    let (ok, log) = ansible_playbook(&out2, &asz, &["--syntax-check"]);
    assert!(ok, "{log}");

    // Refused: exit 2, one line, nothing written.
    for (args, why) in [
        (vec!["--retire", "node9"], "node9"),
        (vec!["--vip", "10.0.0.1/24"], "--vip"),
        (vec![], "nothing asked"),
        (
            vec![
                "--retire", "node1", "--retire", "node2", "--retire", "node3",
            ],
            "at least one control-plane host",
        ),
    ] {
        let bad = dir.path().join("bad");
        let mut argv = vec!["cluster", "--inventory", inv.to_str().unwrap(), "--out"];
        argv.push(bad.to_str().unwrap());
        argv.extend(args.iter().copied());
        let run = certs(&argv);
        assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(why), "{args:?}: {}", run.stderr);
        assert!(!bad.exists(), "{args:?}");
    }
}
