//! Targets `unit_config` (systemd units, env files, static pod manifests, --etcd-servers
//! and --initial-cluster edits) and `proxy_config` (nginx/haproxy upstreams read and edited).

use super::*;

// ---- unit_config: systemd units, env files, static pod manifests, --etcd-servers and
// --initial-cluster edits ----

fn unit_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, s) in text_fixtures(|p, t| {
        let n = p.to_string_lossy();
        n.ends_with(".service")
            || n.ends_with(".conf")
            || n.ends_with(".env")
            || n.contains("manifests")
            || t.contains("--etcd-servers")
            || t.contains("initial-cluster")
            || t.contains("ExecStart")
    })
    .into_iter()
    .enumerate()
    {
        for mode in 0..4u8 {
            out.push(with(mode + (i as u8 & 0x3c), &s));
        }
    }
    out
}

fn unit_config(input: &[u8]) -> Verdict {
    use certs::node::{self, unit};
    let (ctl, body) = split(input);
    let text = String::from_utf8_lossy(body);
    match ctl & 3 {
        0 => {
            let mut svc = unit::Service::default();
            unit::apply(&mut svc, &text);
            let env: BTreeMap<String, (String, String)> = unit::parse_env(&text)
                .into_iter()
                .chain(svc.environment.iter().cloned())
                .map(|(k, v)| (k, (v, "env".to_string())))
                .collect();
            let argv = unit::expand(&svc.exec_start, &env);
            let kind = argv.first().and_then(|a| node::kind_of(a));
            let flags = node::flags(&argv, "unit");
            Ok(format!(
                "unit {} {:?} {} {}",
                argv.len().min(3),
                kind,
                flags.len().min(3),
                node::paths_in(&flags).len().min(3)
            ))
        }
        1 => {
            let paths = certs::node::paths_in_yaml(&text, "/etc/kubernetes").len();
            match node::parse_manifest(&text, "manifest") {
                Some((kind, launch)) => {
                    let settings = node::settings(kind, &launch, "manifest");
                    Ok(format!(
                        "pod {kind} {} {} {}",
                        settings.len().min(5),
                        launch.probes.len(),
                        node::paths_in(&settings).len().min(5) + paths.min(5)
                    ))
                }
                None => Ok(format!("not a pod {}", paths.min(5))),
            }
        }
        2 => etcd_servers_edit(&text),
        _ => initial_cluster_edit(&text),
    }
}

fn same_lines(before: &str, after: &str) -> Result<(), String> {
    let (a, b) = (before.split('\n').count(), after.split('\n').count());
    if a != b {
        return Err(format!("the edit changed the number of lines ({a} -> {b})"));
    }
    Ok(())
}

fn etcd_servers_edit(text: &str) -> Verdict {
    let key = etcd_config::ETCD_SERVERS;
    let found = etcd_config::find(text, key);
    let retire = found
        .first()
        .and_then(|f| f.value.split(',').next())
        .map(|u| etcd_config::url_host(u).to_string())
        .unwrap_or_else(|| "10.0.0.9".into());
    let add = vec!["https://10.99.0.1:2379".to_string()];
    let out = match etcd_config::etcd_servers(text, &[&retire], &add) {
        Ok(Some(out)) => out,
        Ok(None) => return Ok(format!("etcd-servers none {}", found.len().min(3))),
        Err(e) => return Ok(format!("etcd-servers err {}", shape(&e.to_string()))),
    };
    same_lines(text, &out)?;
    let after = etcd_config::find(&out, key);
    if after.len() != found.len() {
        return Err(format!(
            "{key} occurs {} times after the edit, {} before",
            after.len(),
            found.len()
        ));
    }
    for f in &after {
        let urls: Vec<&str> = f.value.split(',').collect();
        if urls
            .iter()
            .any(|u| etcd_config::same_host(etcd_config::url_host(u), &retire))
        {
            return Err(format!(
                "line {}: retired {retire} is still in {key}={}",
                f.line, f.value
            ));
        }
        if !urls.contains(&add[0].as_str()) {
            return Err(format!(
                "line {}: {} was not added to {key}={}",
                f.line, add[0], f.value
            ));
        }
    }
    Ok(format!("etcd-servers ok {}", after.len().min(3)))
}

fn initial_cluster_edit(text: &str) -> Verdict {
    let mut found = Vec::new();
    for key in etcd_config::INITIAL_CLUSTER {
        found.extend(etcd_config::find(text, key));
    }
    let retire = found
        .first()
        .and_then(|f| f.value.split(',').next())
        .and_then(|e| e.split_once('=').map(|(n, _)| n.to_string()))
        .unwrap_or_else(|| "etcd9".into());
    let add = vec![("etcd-new".to_string(), "https://10.99.0.1:2380".to_string())];
    let out = match etcd_config::initial_cluster(text, &[&retire], &add) {
        Ok(Some(out)) => out,
        Ok(None) => return Ok(format!("initial-cluster none {}", found.len().min(3))),
        Err(e) => return Ok(format!("initial-cluster err {}", shape(&e.to_string()))),
    };
    same_lines(text, &out)?;
    let mut after = Vec::new();
    for key in etcd_config::INITIAL_CLUSTER {
        after.extend(etcd_config::find(&out, key));
    }
    if after.len() != found.len() {
        return Err(format!(
            "--initial-cluster occurs {} times after the edit, {} before",
            after.len(),
            found.len()
        ));
    }
    for f in &after {
        if f.value
            .split(',')
            .any(|e| e.split_once('=').is_some_and(|(n, _)| n == retire))
        {
            return Err(format!(
                "line {}: retired member {retire} is still in {}",
                f.line, f.value
            ));
        }
        if !f
            .value
            .split(',')
            .any(|e| e == "etcd-new=https://10.99.0.1:2380")
        {
            return Err(format!(
                "line {}: the new member was not added to {}",
                f.line, f.value
            ));
        }
    }
    Ok(format!("initial-cluster ok {}", after.len().min(3)))
}

pub const UNIT_CONFIG: Target = Target {
    name: "unit_config",
    about: "node::unit (apply, parse_env, expand), node::{parse_manifest, settings, flags, paths_in, paths_in_yaml}, edit::config::{find, etcd_servers, initial_cluster}; edits re-read",
    seeds: unit_seeds,
    dict: &[
        b"[Service]\n",
        b"[Unit]\n",
        b"ExecStart=\n",
        b"ExecStart=/usr/local/bin/kube-apiserver \\\n",
        b"  --etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379 \\\n",
        b"--initial-cluster=etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380",
        b"ETCD_INITIAL_CLUSTER=",
        b"Environment=",
        b"EnvironmentFile=-/etc/etcd.env\n",
        b"export ",
        b"$ETCD_ARGS",
        b"${A}",
        b"\\\n",
        b"\"",
        b"'",
        b"#",
        b";",
        b"- --etcd-servers=",
        b"    - kube-apiserver\n",
        b"    command:\n",
        b"spec:\n  containers:\n  - ",
        b"httpGet:\n",
        b"\t",
        b"\xe9",
        b"=",
        b",",
    ],
    run: unit_config,
    known: &[],
};

// ---- proxy_config: nginx/haproxy upstreams read and edited, and preflight's use of them ----

fn proxy_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, s) in text_fixtures(|p, t| {
        let n = p.to_string_lossy();
        n.contains("nginx")
            || n.contains("haproxy")
            || n.contains("kube-lb")
            || t.contains("upstream")
            || t.contains("backend")
    })
    .into_iter()
    .enumerate()
    {
        for k in 0..4u8 {
            out.push(with((k << 3) | (i as u8 & 7), &s));
        }
    }
    // haproxy has no fixture tree: one made the way kubespray writes it.
    let haproxy = b"global\n    maxconn 4000\n\ndefaults\n    mode tcp\n    timeout connect 5s\n\nfrontend kube_api_frontend\n    bind 127.0.0.1:6443\n    default_backend kube_api_backend\n\nbackend kube_api_backend\n    balance leastconn\n    server node1 10.0.0.1:6443 check check-ssl verify none\n    server node2 10.0.0.2:6443 check check-ssl verify none\n    server node3 10.0.0.3:6443 check check-ssl verify none disabled\n";
    for k in 0..4u8 {
        out.push(with(k << 3 | 1, haproxy));
    }
    out
}

const ADDS: &[&[&str]] = &[
    &[],
    &["10.99.0.1:6443"],
    &["node9=10.99.0.1:6443"],
    &["10.99.0.1"],
];

fn proxy_config(input: &[u8]) -> Verdict {
    let (ctl, body) = split(input);
    let text = String::from_utf8_lossy(body);
    let before = proxy::servers(&text);
    let retire = if before.is_empty() {
        "10.0.0.9".to_string()
    } else {
        let s = &before[(ctl as usize & 7) % before.len()];
        match (&s.name, ctl & 0x40 != 0) {
            (Some(n), true) => n.clone(),
            _ => s.host.clone(),
        }
    };
    let add: Vec<String> = ADDS[(ctl as usize >> 3) & 3]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // preflight reads the same file for its proxy-upstream check.
    let retire_list = vec![retire.clone()];
    let change = certs::preflight::checks::Change {
        vip: None,
        vip_port: 6443,
        retire: &retire_list,
        keep: &[],
        keep_cover: &[],
        own: &[],
        window: 0,
        now: 1_800_000_000,
    };
    let file = certs::preflight::ConfigFile {
        path: PathBuf::from("/etc/nginx/nginx.conf"),
        text: text.to_string(),
    };
    let checks = certs::preflight::checks::clients(&Inventory::default(), &[file], &change);
    let mut sig = format!("{} checks {} ", before.len().min(4), checks.len());
    let out = match proxy::upstreams(&text, &[&retire], &add) {
        Ok(Some(out)) => out,
        Ok(None) => return Ok(sig + "none"),
        Err(e) => return Ok(sig + &shape(&e.to_string())),
    };
    // A config whose braces do not balance is one nginx refuses anyway: what the edit makes of
    // it is not checked (that the edit does not panic or hang on it is).
    // Braces count as nginx reads them: outside `#` comments (a removed server line may take a
    // brace in its comment with it, which changes nothing).
    let balance = |t: &str| {
        t.lines()
            .map(|l| &l[..l.find('#').unwrap_or(l.len())])
            .map(|c| c.matches('{').count() as i64 - c.matches('}').count() as i64)
            .sum::<i64>()
    };
    if balance(&text) != 0 {
        return Ok(sig + "unbalanced");
    }
    if balance(&out) != 0 {
        return Err(format!(
            "the edit unbalanced the config's braces (a copied line carried a `{{` or `}}`): {}",
            out.chars().take(300).collect::<String>()
        ));
    }
    let after = proxy::servers(&out);
    if let Some(s) = after.iter().find(|s| s.is(&retire)) {
        return Err(format!(
            "retired {retire} is still a server after the edit, line {}: {}",
            s.line, s.text
        ));
    }
    let mut left: Vec<&str> = after.iter().map(|s| s.text.as_str()).collect();
    for s in before.iter().filter(|s| !s.is(&retire)) {
        match left.iter().position(|t| *t == s.text) {
            Some(i) => {
                left.remove(i);
            }
            None => {
                return Err(format!(
                    "{}server line {} (`{}`) was lost or changed by the edit",
                    if s.text.contains('\t') {
                        "tab-separated "
                    } else {
                        ""
                    },
                    s.line,
                    s.text
                ))
            }
        }
    }
    // An add takes its port from the lines around it: checked where every line has one.
    for a in add
        .iter()
        .filter(|_| before.iter().all(|s| s.port.is_some()))
    {
        let host = a.rsplit('=').next().unwrap().split(':').next().unwrap();
        if !after.iter().any(|s| s.host == host) {
            return Err(format!("{a} was added but is not a server after the edit"));
        }
    }
    sig.push_str(&format!("ok {}", after.len().min(4)));
    Ok(sig)
}

pub const PROXY_CONFIG: Target = Target {
    name: "proxy_config",
    about: "edit::proxy::{servers, upstreams} (nginx, haproxy), preflight::checks::clients on the file; the edit re-read",
    seeds: proxy_seeds,
    dict: &[
        b"upstream backend {\n",
        b"    server 10.0.0.1:6443 max_fails=3 fail_timeout=30s;\n",
        b"server ",
        b" down",
        b" disabled",
        b"backend kube_api_backend\n",
        b"listen stats\n",
        b"frontend f\n",
        b"stream {\n",
        b"}\n",
        b"{",
        b"}",
        b";",
        b"#",
        b"include /etc/nginx/conf.d/*.conf;\n",
        b"\t",
        b"[fd00::1]:6443",
        b"\xe9",
        b"\r\n",
    ],
    run: proxy_config,
    known: &[],
};
