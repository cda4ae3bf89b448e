//! What the node says about its control-plane components: which binary runs how (static pod
//! manifest or systemd unit), with which flags, and so which files it reads, where it serves and
//! which CA it trusts. Pure: texts in, [`Component`]s out. [`crate::sys::node`] finds and reads
//! the files (manifests, units and drop-ins, environment files, kubeconfigs, kubelet config)
//! under `--root`, once.
//!
//! ```text
//! /etc/kubernetes/manifests/*.yaml ──► parse_manifest ─┐
//! /etc/systemd/system/*.service (+ .d/*.conf)          ├─► Launch { argv, env } ──► Component
//!   EnvironmentFile=/etc/etcd.env ──► parse_env ──────┘      (settings: flags, then ETCD_* vars)
//! ```

pub mod unit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How a component is started, and so restarted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Runs {
    /// A static pod: the manifest's path (as read, under `--root`).
    StaticPod(PathBuf),
    /// A systemd unit, by name without `.service`.
    Systemd(String),
}

/// One setting of a component: a command-line flag or an environment variable it reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting {
    /// The flag's name without dashes (`cert-file`); `ETCD_CERT_FILE` becomes `cert-file`.
    pub name: String,
    pub value: String,
    /// Where it was read: `etcd.service ExecStart`, `/etc/etcd.env ETCD_CERT_FILE`.
    pub from: String,
}

/// A control-plane component as the node runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`, `kubelet`,
    /// `kube-proxy`, `node-local-lb`.
    pub kind: String,
    pub runs: Runs,
    /// The manifest or unit file it was read from.
    pub source: PathBuf,
    /// Command-line flags first, in order; for etcd then its `ETCD_*` variables.
    pub settings: Vec<Setting>,
    /// Every file it reads, as a path under `--root`: absolute paths in its settings, and the
    /// files named inside the kubeconfigs and config files it reads.
    pub files: Vec<PathBuf>,
    /// HTTP probes its manifest declares (liveness, readiness, startup), for health gates.
    pub probes: Vec<HttpProbe>,
    /// The unit file and its drop-ins (systemd only): changing one needs a daemon-reload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unit_files: Vec<PathBuf>,
}

/// A kubelet-style `httpGet` probe from a static pod manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpProbe {
    pub scheme: String,
    pub host: Option<String>,
    pub port: u16,
    pub path: String,
}

impl Component {
    /// The effective value of a setting: a flag wins over an environment variable (as etcd and
    /// Kubernetes flags do); the last flag wins over earlier ones. `--flag` alone reads `true`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let flag = self
            .settings
            .iter()
            .rev()
            .find(|s| s.name == name && !s.from.contains(" ETCD_"));
        flag.or_else(|| self.settings.iter().rev().find(|s| s.name == name))
            .map(|s| s.value.as_str())
    }

    /// Where the effective value of `name` was read, for messages.
    pub fn origin(&self, name: &str) -> String {
        let value = self.get(name);
        self.settings
            .iter()
            .rev()
            .find(|s| s.name == name && Some(s.value.as_str()) == value)
            .map_or_else(
                || format!("{} (default)", self.source.display()),
                |s| {
                    // A flag names itself; a variable or a config file key is named in `from`.
                    if s.from.ends_with(" ExecStart") || s.from.ends_with(" command") {
                        format!("{} --{name}", s.from)
                    } else {
                        s.from.clone()
                    }
                },
            )
    }

    /// A boolean setting (`--client-cert-auth`, `--client-cert-auth=true`, `ETCD_..=True`).
    pub fn flag_on(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    }

    /// A path setting, under `root`.
    pub fn path(&self, root: &Path, name: &str) -> Option<PathBuf> {
        self.get(name)
            .filter(|v| v.starts_with('/'))
            .map(|v| crate::sys::fs::under_root(root, Path::new(v)))
    }

    /// Whether it reads `file` (a path under `--root`).
    pub fn reads(&self, file: &Path) -> bool {
        self.files.iter().any(|f| f == file)
    }
}

/// A configuration file's bytes as text for matching: a UTF-8 BOM dropped, UTF-16 with a BOM
/// decoded, anything else read as UTF-8 with each invalid byte (a Latin-1 `é` in a comment)
/// replaced by U+FFFD. Never fails: a file is matched on what can be read of it, not skipped.
pub fn lossy_text(bytes: &[u8]) -> String {
    let utf16 = |rest: &[u8], le: bool| {
        let units = rest.chunks(2).map(|c| match (c, le) {
            ([a, b], true) => u16::from_le_bytes([*a, *b]),
            ([a, b], false) => u16::from_be_bytes([*a, *b]),
            _ => 0xFFFD,
        });
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The kind of component a binary is, by its file name.
pub fn kind_of(argv0: &str) -> Option<&'static str> {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    Some(match base {
        "etcd" => "etcd",
        "kube-apiserver" => "kube-apiserver",
        "kube-controller-manager" => "kube-controller-manager",
        "kube-scheduler" => "kube-scheduler",
        "kubelet" => "kubelet",
        "kube-proxy" => "kube-proxy",
        "nginx" | "haproxy" | "kube-lb" => "node-local-lb",
        _ => return None,
    })
}

/// A component's command line and environment, before its settings are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Launch {
    pub argv: Vec<String>,
    /// Variables from `Environment=` and `EnvironmentFile=` (or a manifest's `env:`), with the
    /// file each came from.
    pub env: BTreeMap<String, (String, String)>,
    pub probes: Vec<HttpProbe>,
}

/// `--name=value`, `--name value` and bare `--name` flags of an argv (after argv[0]).
pub fn flags(argv: &[String], from: &str) -> Vec<Setting> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < argv.len() {
        let a = &argv[i];
        i += 1;
        let Some(body) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            continue;
        };
        if body.is_empty() {
            continue;
        }
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n.to_string(), v.to_string()),
            None => match argv.get(i) {
                Some(next) if !next.starts_with('-') => {
                    i += 1;
                    (body.to_string(), next.clone())
                }
                _ => (body.to_string(), "true".to_string()),
            },
        };
        out.push(Setting {
            name,
            value,
            from: from.to_string(),
        });
    }
    out
}

/// The settings of a launched component: its flags, then (etcd only, which reads them natively)
/// its `ETCD_*` variables.
pub fn settings(kind: &str, launch: &Launch, from: &str) -> Vec<Setting> {
    let mut out = flags(&launch.argv, from);
    if kind == "etcd" {
        for (k, (v, file)) in &launch.env {
            if let Some(rest) = k.strip_prefix("ETCD_") {
                out.push(Setting {
                    name: rest.to_ascii_lowercase().replace('_', "-"),
                    value: v.clone(),
                    from: format!("{file} {k}"),
                });
            }
        }
    }
    out
}

/// Absolute paths in settings values (comma-separated lists included), as node paths.
pub fn paths_in(settings: &[Setting]) -> Vec<String> {
    let mut out = Vec::new();
    for s in settings {
        for part in s.value.split(',') {
            let p = part.trim();
            if p.starts_with('/') && !p.contains("://") && p.len() > 1 {
                out.push(p.to_string());
            }
        }
    }
    out
}

/// Absolute file paths named inside a YAML document (a kubeconfig's `client-certificate`, a
/// kubelet config's `tlsCertFile`), relative ones resolved against `dir` (kubeconfig rules).
pub fn paths_in_yaml(text: &str, dir: &str) -> Vec<String> {
    let Ok(doc) = crate::pki::yaml::from_str::<serde_yaml_ng::Value>(text) else {
        return vec![];
    };
    let mut out = Vec::new();
    walk_yaml(&doc, None, dir, &mut out);
    out
}

fn walk_yaml(v: &serde_yaml_ng::Value, key: Option<&str>, dir: &str, out: &mut Vec<String>) {
    use serde_yaml_ng::Value;
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                walk_yaml(v, k.as_str(), dir, out);
            }
        }
        Value::Sequence(s) => s.iter().for_each(|v| walk_yaml(v, key, dir, out)),
        Value::String(s) => {
            let file_key = key.is_some_and(|k| {
                matches!(
                    k,
                    "client-certificate" | "client-key" | "certificate-authority"
                ) || k.ends_with("File")
            });
            if s.starts_with('/') && (file_key || !s.contains(' ')) && !s.contains("://") {
                out.push(s.clone());
            } else if file_key && !s.is_empty() {
                out.push(format!("{}/{s}", dir.trim_end_matches('/')));
            }
        }
        _ => {}
    }
}

/// A static pod manifest: its first container's command and args, `env:` values, and
/// `httpGet` probes. `None` when it is not a pod of a component we know.
pub fn parse_manifest(text: &str, from: &str) -> Option<(&'static str, Launch)> {
    use serde_yaml_ng::Value;
    let doc: Value = crate::pki::yaml::from_str(text).ok()?;
    let container = doc.get("spec")?.get("containers")?.as_sequence()?.first()?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_sequence)
            .map(|s| {
                s.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut argv = strings(container.get("command"));
    argv.extend(strings(container.get("args")));
    let kind = argv.first().and_then(|a| kind_of(a)).or_else(|| {
        doc.get("metadata")?
            .get("labels")?
            .get("component")?
            .as_str()
            .and_then(kind_of)
    })?;
    let mut env = BTreeMap::new();
    for e in container
        .get("env")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        if let (Some(n), Some(v)) = (
            e.get("name").and_then(Value::as_str),
            e.get("value").and_then(Value::as_str),
        ) {
            env.insert(n.to_string(), (v.to_string(), from.to_string()));
        }
    }
    let mut probes = Vec::new();
    for p in ["readinessProbe", "livenessProbe", "startupProbe"] {
        let Some(get) = container.get(p).and_then(|p| p.get("httpGet")) else {
            continue;
        };
        let port = match get.get("port") {
            Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        if let Some(port) = port {
            probes.push(HttpProbe {
                scheme: get
                    .get("scheme")
                    .and_then(Value::as_str)
                    .unwrap_or("HTTP")
                    .to_ascii_lowercase(),
                host: get.get("host").and_then(Value::as_str).map(str::to_string),
                port,
                path: get
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or("/")
                    .to_string(),
            });
        }
    }
    Some((kind, Launch { argv, env, probes }))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build trees with std::fs
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_in_every_spelling_and_env_after_flags() {
        let argv = s(&[
            "etcd",
            "--cert-file=/a.pem",
            "--client-cert-auth",
            "--name",
            "etcd1",
            "-v=2",
        ]);
        let mut env = BTreeMap::new();
        env.insert(
            "ETCD_CERT_FILE".into(),
            ("/b.pem".into(), "/etc/etcd.env".into()),
        );
        env.insert(
            "ETCD_TRUSTED_CA_FILE".into(),
            ("/ca.pem".into(), "/etc/etcd.env".into()),
        );
        let launch = Launch {
            argv,
            env,
            probes: vec![],
        };
        let c = Component {
            kind: "etcd".into(),
            runs: Runs::Systemd("etcd".into()),
            source: "/etc/systemd/system/etcd.service".into(),
            settings: settings("etcd", &launch, "etcd.service ExecStart"),
            files: vec![],
            probes: vec![],
            unit_files: vec![],
        };
        assert_eq!(c.get("cert-file"), Some("/a.pem"), "the flag wins");
        assert_eq!(c.get("trusted-ca-file"), Some("/ca.pem"));
        assert_eq!(c.get("name"), Some("etcd1"));
        assert!(c.flag_on("client-cert-auth"));
        assert_eq!(
            c.origin("trusted-ca-file"),
            "/etc/etcd.env ETCD_TRUSTED_CA_FILE"
        );
        assert_eq!(c.origin("cert-file"), "etcd.service ExecStart --cert-file");
        assert_eq!(
            paths_in(&c.settings),
            ["/a.pem", "/b.pem", "/ca.pem"].map(String::from)
        );
    }

    #[test]
    fn a_manifest_gives_argv_and_probes() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/kubespray/etc/kubernetes/manifests/kube-apiserver.yaml"
        ))
        .unwrap();
        let (kind, l) = parse_manifest(&text, "m").unwrap();
        assert_eq!(kind, "kube-apiserver");
        assert!(l
            .argv
            .contains(&"--etcd-certfile=/etc/ssl/etcd/ssl/node-node1.pem".into()));
        assert_eq!(l.probes[0].path, "/readyz");
        assert_eq!(l.probes[0].port, 6443);
        assert_eq!(l.probes[0].scheme, "https");
        assert!(
            parse_manifest("kind: Pod\nspec: {containers: [{command: [coredns]}]}", "m").is_none()
        );
    }

    #[test]
    fn yaml_paths_resolve_relative_kubeconfig_references() {
        let kc = "users:\n- name: u\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: pki/k.key\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n";
        assert_eq!(
            paths_in_yaml(kc, "/etc/kubernetes"),
            [
                "/var/lib/kubelet/pki/kubelet-client-current.pem",
                "/etc/kubernetes/pki/k.key"
            ]
            .map(String::from)
        );
    }

    #[test]
    fn config_text_is_decoded_never_refused() {
        assert_eq!(
            lossy_text(b"server 10.0.0.1 # caf\xe9\n"),
            "server 10.0.0.1 # caf\u{fffd}\n"
        );
        assert_eq!(lossy_text(b"\xef\xbb\xbfa=b"), "a=b");
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("x=1\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(lossy_text(&le), "x=1\n");
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("x=1".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(lossy_text(&be), "x=1");
    }
}
