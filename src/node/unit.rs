//! systemd units as components read them: `ExecStart=` (continuation lines joined, the last
//! one after a reset wins, drop-ins applied in order), `Environment=` and `EnvironmentFile=`,
//! `$VAR`/`${VAR}` expanded the way systemd does; and `KEY=value` environment files
//! (`/etc/etcd.env`, `/var/lib/kubelet/kubeadm-flags.env`).

use std::collections::BTreeMap;

/// What a unit file (and its drop-ins) say about the service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Service {
    /// Words of the effective `ExecStart=`, before expansion.
    pub exec_start: Vec<String>,
    /// `Environment=` assignments, in order.
    pub environment: Vec<(String, String)>,
    /// `EnvironmentFile=` paths (a leading `-`, "ignore if missing", removed).
    pub environment_files: Vec<String>,
}

/// Lines of a unit with `\` continuations joined and comments dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if cur.is_empty() && (line.starts_with('#') || line.starts_with(';')) {
            continue;
        }
        if let Some(body) = line.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
        } else {
            cur.push_str(line);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Applies one unit file or drop-in on top of `svc`.
pub fn apply(svc: &mut Service, text: &str) {
    let mut section = String::new();
    for line in logical_lines(text) {
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_string();
            continue;
        }
        if section != "Service" {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "ExecStart" => {
                // An empty assignment resets (drop-ins do this before setting their own).
                let cmd = value.trim_start_matches(['-', '@', '+', '!', ':']);
                svc.exec_start = words(cmd);
            }
            "Environment" => {
                for w in words(value) {
                    if let Some((k, v)) = w.split_once('=') {
                        svc.environment.push((k.to_string(), v.to_string()));
                    }
                }
            }
            "EnvironmentFile" => {
                if value.is_empty() {
                    svc.environment_files.clear();
                } else {
                    svc.environment_files
                        .push(value.trim_start_matches('-').to_string());
                }
            }
            _ => {}
        }
    }
}

/// Shell-like words: whitespace separates, single and double quotes group, `\` escapes.
pub fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    in_word = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `KEY=value` lines (`export KEY=value` and quoted values too); comments and blanks skipped.
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = match (v.chars().next(), v.chars().last()) {
                (Some('"'), Some('"')) | (Some('\''), Some('\'')) if v.len() >= 2 => {
                    &v[1..v.len() - 1]
                }
                _ => v,
            };
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// systemd's expansion of `ExecStart=` words: `${VAR}` inside a word is replaced in place;
/// a word that is exactly `$VAR` is replaced by the value split into words (unset: no word).
pub fn expand(exec: &[String], env: &BTreeMap<String, (String, String)>) -> Vec<String> {
    let get = |k: &str| env.get(k).map(|(v, _)| v.as_str());
    let mut out = Vec::new();
    for w in exec {
        if let Some(name) = w
            .strip_prefix('$')
            .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            out.extend(get(name).map(words).unwrap_or_default());
            continue;
        }
        let mut s = String::new();
        let mut rest = w.as_str();
        while let Some(i) = rest.find("${") {
            s.push_str(&rest[..i]);
            match rest[i + 2..].find('}') {
                Some(j) => {
                    s.push_str(get(&rest[i + 2..i + 2 + j]).unwrap_or(""));
                    rest = &rest[i + 3 + j..];
                }
                None => {
                    s.push_str(&rest[i..]);
                    rest = "";
                }
            }
        }
        s.push_str(rest);
        out.push(s);
    }
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests build trees with std::fs
mod tests {
    use super::*;

    #[test]
    fn a_binary_unit_with_continuations() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/binary/etc/systemd/system/etcd.service"
        ))
        .unwrap();
        let mut svc = Service::default();
        apply(&mut svc, &text);
        assert_eq!(svc.exec_start[0], "/usr/local/bin/etcd");
        assert!(svc
            .exec_start
            .contains(&"--cert-file=/etc/kubernetes/ssl/etcd.pem".to_string()));
        assert!(svc.exec_start.contains(
            &"--listen-client-urls=https://172.72.0.95:2379,http://127.0.0.1:2379".to_string()
        ));
    }

    #[test]
    fn drop_ins_reset_exec_start_and_expand_variables() {
        let mut svc = Service::default();
        apply(
            &mut svc,
            "[Service]\nExecStart=/usr/bin/kubelet\nEnvironmentFile=-/etc/default/kubelet\n",
        );
        apply(
            &mut svc,
            "# kubeadm\n[Service]\nEnvironment=\"KUBELET_KUBECONFIG_ARGS=--kubeconfig=/etc/kubernetes/kubelet.conf --bootstrap-kubeconfig=/b.conf\" \"X=1\"\nEnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_KUBEADM_ARGS --x=${X}y\n",
        );
        assert_eq!(
            svc.environment_files,
            ["/etc/default/kubelet", "/var/lib/kubelet/kubeadm-flags.env"]
        );
        let mut env = BTreeMap::new();
        for (k, v) in &svc.environment {
            env.insert(k.clone(), (v.clone(), "unit".to_string()));
        }
        for (k, v) in parse_env("KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint=unix:///run/c.sock --pod-infra-container-image=p\"\n") {
            env.insert(k, (v, "env".to_string()));
        }
        assert_eq!(
            expand(&svc.exec_start, &env),
            [
                "/usr/bin/kubelet",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--bootstrap-kubeconfig=/b.conf",
                "--container-runtime-endpoint=unix:///run/c.sock",
                "--pod-infra-container-image=p",
                "--x=1y"
            ]
        );
    }

    #[test]
    fn env_files() {
        assert_eq!(
            parse_env("# c\nETCD_NAME=etcd1\nexport A='b c'\n\nbad line\n"),
            [
                ("ETCD_NAME".to_string(), "etcd1".to_string()),
                ("A".into(), "b c".into())
            ]
        );
    }
}
