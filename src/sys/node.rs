//! Reads, once, how the node under `--root` runs its control plane: static pod manifests,
//! systemd units with their drop-ins and environment files, and the kubeconfigs and config
//! files those name. The parsing is in [`crate::node`]; this module only finds and reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::node::{self, unit, Component, Launch, Runs, Setting};

/// Where static pod manifests live (the kubelet's `staticPodPath` on every installer we know).
pub const MANIFESTS: &str = "/etc/kubernetes/manifests";
/// Unit directories, highest priority first (a unit in /etc hides the packaged one).
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
/// A file the node's configuration names that could not be read or parsed: the checks that
/// needed it cannot pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub path: PathBuf,
    pub why: String,
}

/// A config file as text (decoded leniently, [`node::lossy_text`]), or why it cannot be read
/// (recorded in `unread`). A file that is not there is `None` without a record: not every
/// named file exists on every node, and the checks say so themselves.
fn read_text(path: &Path, unread: &mut Vec<Unread>) -> Option<String> {
    if crate::sys::fs::overlay::get(path).is_none() && crate::sys::fs::is_absent(path) {
        return None;
    }
    match crate::sys::fs::read_entry(path) {
        crate::sys::fs::Walked::File { bytes, .. } => Some(node::lossy_text(&bytes)),
        crate::sys::fs::Walked::Problem { message, .. } => {
            if !unread.iter().any(|u| u.path == path) {
                unread.push(Unread {
                    path: path.to_path_buf(),
                    why: message,
                });
            }
            None
        }
    }
}

fn list(dir: &Path, ext: &[&str]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ext.contains(&e))
        })
        .collect();
    out.sort();
    out
}

/// Every component found under `root`: static pods first, then systemd services.
pub fn read(root: &Path) -> Vec<Component> {
    read_reporting(root).0
}

/// [`read`], and every file the node's configuration needed that could not be read or parsed.
pub fn read_reporting(root: &Path) -> (Vec<Component>, Vec<Unread>) {
    let mut unread = Vec::new();
    let out = read_into(root, &mut unread);
    (out, unread)
}

fn read_into(root: &Path, unread: &mut Vec<Unread>) -> Vec<Component> {
    let mut out = Vec::new();
    let manifests = crate::sys::fs::under_root(root, Path::new(MANIFESTS));
    for path in list(&manifests, &["yaml", "yml", "json"]) {
        let Some(text) = read_text(&path, unread) else {
            continue;
        };
        let from = path.display().to_string();
        if let Some((kind, launch)) = node::parse_manifest(&text, &from) {
            out.push(component(
                root,
                kind,
                Runs::StaticPod(path.clone()),
                &path,
                &launch,
                &[],
                unread,
            ));
        } else if let Err(e) = crate::pki::yaml::from_str::<serde_yaml_ng::Value>(&text) {
            unread.push(Unread {
                path: path.clone(),
                why: format!("not readable as YAML ({})", one_line(&e.to_string())),
            });
        }
    }
    // Units by name, the first directory that has one wins; drop-ins by file name likewise.
    let mut units: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut drop_ins: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    let dirs: Vec<PathBuf> = UNIT_DIRS
        .iter()
        .map(|d| crate::sys::fs::under_root(root, Path::new(d)))
        .collect();
    for dir in &dirs {
        for path in list(dir, &["service"]) {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            units.entry(name.to_string()).or_insert(path.clone());
        }
    }
    // systemd merges a unit's drop-ins from every unit directory (an /etc drop-in over a
    // packaged unit in /lib), the same file name in a higher directory hiding a lower one.
    for name in units.keys() {
        for dir in &dirs {
            for conf in list(&dir.join(format!("{name}.service.d")), &["conf"]) {
                let file = conf.file_name().unwrap().to_string_lossy().into_owned();
                drop_ins
                    .entry(name.to_string())
                    .or_default()
                    .entry(file)
                    .or_insert(conf);
            }
        }
    }
    for (name, path) in &units {
        let Some(text) = read_text(path, unread) else {
            continue;
        };
        let mut svc = unit::Service::default();
        unit::apply(&mut svc, &text);
        for conf in drop_ins.get(name).into_iter().flat_map(|m| m.values()) {
            if let Some(t) = read_text(conf, unread) {
                unit::apply(&mut svc, &t);
            }
        }
        let Some(kind) = svc
            .exec_start
            .first()
            .and_then(|a| node::kind_of(a))
            .or_else(|| (name == "kube-lb").then_some("node-local-lb"))
        else {
            continue;
        };
        let mut unit_files = vec![path.clone()];
        unit_files.extend(
            drop_ins
                .get(name)
                .into_iter()
                .flat_map(|m| m.values().cloned()),
        );
        let mut env = BTreeMap::new();
        let unit_from = format!("{} Environment", path.display());
        for (k, v) in &svc.environment {
            env.insert(k.clone(), (v.clone(), unit_from.clone()));
        }
        for f in &svc.environment_files {
            let file = crate::sys::fs::under_root(root, Path::new(f));
            for (k, v) in read_text(&file, unread)
                .map(|t| unit::parse_env(&t))
                .unwrap_or_default()
            {
                env.insert(k, (v, file.display().to_string()));
            }
        }
        let argv = unit::expand(&svc.exec_start, &env);
        let launch = Launch {
            argv,
            env,
            probes: vec![],
        };
        let env_files: Vec<PathBuf> = svc
            .environment_files
            .iter()
            .map(|f| crate::sys::fs::under_root(root, Path::new(f)))
            .collect();
        let mut c = component(
            root,
            kind,
            Runs::Systemd(name.clone()),
            path,
            &launch,
            &env_files,
            unread,
        );
        c.unit_files = unit_files;
        // A changed unit or drop-in restarts it too (after a daemon-reload).
        for f in &c.unit_files {
            if !c.files.contains(f) {
                c.files.push(f.clone());
            }
        }
        out.push(c);
    }
    out
}

/// A component from its launch; `also` are files it reads that no flag names (its environment
/// files). Its own manifest counts as read: a changed manifest restarts the pod.
fn component(
    root: &Path,
    kind: &str,
    runs: Runs,
    source: &Path,
    launch: &Launch,
    also: &[PathBuf],
    unread: &mut Vec<Unread>,
) -> Component {
    let from = match &runs {
        Runs::StaticPod(_) => format!("{} command", source.display()),
        Runs::Systemd(_) => format!("{} ExecStart", source.display()),
    };
    let mut settings = node::settings(kind, launch, &from);
    // The kubelet and kube-proxy keep most of their settings in a config file.
    if let Some(cfg) = settings
        .iter()
        .rev()
        .find(|s| s.name == "config")
        .map(|s| s.value.clone())
    {
        let path = crate::sys::fs::under_root(root, Path::new(&cfg));
        if let Some(text) = read_text(&path, unread) {
            match crate::pki::yaml::from_str::<serde_yaml_ng::Value>(&text) {
                Ok(_) => settings.extend(config_settings(&text, &path.display().to_string())),
                Err(e) => unread.push(Unread {
                    path: path.clone(),
                    why: format!("not readable as YAML ({})", one_line(&e.to_string())),
                }),
            }
        }
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !files.contains(&p) {
            files.push(p);
        }
    };
    for p in node::paths_in(&settings) {
        let rooted = crate::sys::fs::under_root(root, Path::new(&p));
        let yaml = rooted
            .extension()
            .is_some_and(|e| matches!(e.to_str(), Some("conf" | "yaml" | "yml" | "kubeconfig")))
            || p.contains("kubeconfig");
        if yaml {
            if let Some(text) = read_text(&rooted, unread) {
                let dir = Path::new(&p).parent().unwrap_or(Path::new("/"));
                for inner in node::paths_in_yaml(&text, &dir.to_string_lossy()) {
                    push(crate::sys::fs::under_root(root, Path::new(&inner)));
                }
            }
        }
        push(rooted);
    }
    for f in also {
        if !files.contains(f) {
            files.push(f.clone());
        }
    }
    if matches!(runs, Runs::StaticPod(_)) && !files.iter().any(|f| f == source) {
        files.push(source.to_path_buf());
    }
    Component {
        kind: kind.to_string(),
        runs,
        source: source.to_path_buf(),
        settings,
        files,
        probes: launch.probes.clone(),
        unit_files: vec![],
    }
}

fn one_line(s: &str) -> String {
    s.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

/// The settings a kubelet or kube-proxy config file holds, as the flags they replace.
fn config_settings(text: &str, from: &str) -> Vec<Setting> {
    let Ok(doc) = crate::pki::yaml::from_str::<serde_yaml_ng::Value>(text) else {
        return vec![];
    };
    let scalar = |v: &serde_yaml_ng::Value| -> Option<String> {
        match v {
            serde_yaml_ng::Value::String(s) => Some(s.clone()),
            serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
            serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let keys: &[(&[&str], &str)] = &[
        (&["healthzPort"], "healthz-port"),
        (&["healthzBindAddress"], "healthz-bind-address"),
        (&["tlsCertFile"], "tls-cert-file"),
        (&["tlsPrivateKeyFile"], "tls-private-key-file"),
        (&["port"], "port"),
        (&["address"], "address"),
        (
            &["authentication", "x509", "clientCAFile"],
            "client-ca-file",
        ),
        (&["clientConnection", "kubeconfig"], "kubeconfig"),
    ];
    let mut out = Vec::new();
    for (path, flag) in keys {
        let mut v = Some(&doc);
        for k in *path {
            v = v.and_then(|v| v.get(k));
        }
        if let Some(value) = v.and_then(scalar) {
            out.push(Setting {
                name: flag.to_string(),
                value,
                from: format!("{from} {}", path.join(".")),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name)
    }

    #[test]
    fn kubespray_node_static_pod_apiserver_and_systemd_etcd_from_env() {
        let root = fixture("kubespray");
        let comps = read(&root);
        let api = comps.iter().find(|c| c.kind == "kube-apiserver").unwrap();
        assert!(matches!(api.runs, Runs::StaticPod(_)));
        assert!(api.reads(&root.join("etc/ssl/etcd/ssl/node-node1.pem")));
        let etcd = comps.iter().find(|c| c.kind == "etcd").unwrap();
        assert_eq!(etcd.runs, Runs::Systemd("etcd".into()));
        assert!(etcd.reads(&root.join("etc/ssl/etcd/ssl/member-node1.pem")));
        assert!(etcd.flag_on("client-cert-auth"));
        assert_eq!(
            etcd.get("listen-client-urls"),
            Some("https://10.6.0.11:2379,https://127.0.0.1:2379")
        );
        assert!(etcd.origin("cert-file").contains("etcd.env"));
        // Its unit and environment file count as read: a change to either restarts it.
        assert!(etcd.reads(&root.join("etc/etcd.env")));
        assert!(etcd.reads(&root.join("etc/systemd/system/etcd.service")));
        assert_eq!(
            etcd.unit_files,
            [root.join("etc/systemd/system/etcd.service")]
        );
        assert!(api.reads(&root.join("etc/kubernetes/manifests/kube-apiserver.yaml")));
    }

    #[test]
    fn binary_node_units_with_flags() {
        let root = fixture("binary");
        let comps = read(&root);
        let kinds: Vec<&str> = comps.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["etcd", "kube-apiserver", "node-local-lb"]);
        // kubeasz's kube-lb: its nginx config is named by `-c`.
        assert!(comps[2].reads(&root.join("etc/kube-lb/conf/kube-lb.conf")));
        assert_eq!(comps[2].runs, Runs::Systemd("kube-lb".into()));
        assert!(comps[1].reads(&root.join("etc/kubernetes/ssl/kubernetes.pem")));
        assert_eq!(comps[1].get("anonymous-auth"), Some("false"));
    }

    #[test]
    fn drop_ins_in_etc_apply_to_a_packaged_unit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let lib = root.join("lib/systemd/system");
        let etc = root.join("etc/systemd/system/kubelet.service.d");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(
            lib.join("kubelet.service"),
            "[Service]\nExecStart=/usr/bin/kubelet\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("10-kubeadm.conf"),
            "[Service]\nExecStart=\nExecStart=/usr/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf\n",
        )
        .unwrap();
        let comps = read(root);
        assert_eq!(comps.len(), 1);
        assert!(comps[0].reads(&root.join("etc/kubernetes/kubelet.conf")));
        assert_eq!(
            comps[0].unit_files,
            [lib.join("kubelet.service"), etc.join("10-kubeadm.conf")]
        );
    }
}
