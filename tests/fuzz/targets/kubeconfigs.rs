//! Targets `kubeconfig_parse` and `kubeconfig_edit` (set-server and set-ca, the output
//! re-parsed).

use super::*;

// ---- kubeconfig_parse ----

fn yaml_seeds() -> Vec<Vec<u8>> {
    text_fixtures(|p, t| {
        let name = p.to_string_lossy();
        t.contains("clusters:")
            || t.contains("apiVersion")
            || name.ends_with(".conf")
            || name.ends_with(".kubeconfig")
            || name.ends_with(".yaml")
    })
}

const YAML_DICT: &[&[u8]] = &[
    b"kind: Config\n",
    b"clusters:\n",
    b"- cluster:\n",
    b"    server: https://10.0.0.1:6443\n",
    b"  name: ",
    b"users:\n",
    b"- name: a\n  user:\n",
    b"client-certificate-data: ",
    b"client-key-data: ",
    b"certificate-authority-data: ",
    b"client-certificate: /etc/kubernetes/pki/apiserver.crt\n",
    b"contexts: []\n",
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"!!binary ",
    b"|\n  ",
    b">-\n  ",
    b"\"\\u00e9\"",
    b"'it''s'",
    b"{",
    b"}",
    b"[",
    b"]",
    b"---\n",
    b"...\n",
    b"? ",
    b"%YAML 1.1\n",
    b" # c\n",
    b"\r\n",
    b"\t",
];

fn kubeconfig_parse(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let path = Path::new("/etc/kubernetes/admin.conf");
    let mut sig = format!("{}", certs::pki::kubeconfig::looks_like(&text));
    match certs::pki::kubeconfig::parse(path, &text) {
        Ok(k) => sig.push_str(&format!("|ok {} {}", k.clusters.len(), k.users.len())),
        Err(e) => {
            no_key_body(input, &e.to_string())?;
            sig.push_str(&format!("|{}", shape(&e.to_string())));
        }
    }
    match kc_edit::clusters(&text) {
        Ok(c) => sig.push_str(&format!("|{}", c.len())),
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    match kc_edit::references(&text) {
        Ok(r) => sig.push_str(&format!("|{}", r.len())),
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    sig.push_str(&format!(
        "|{}|{}",
        kc_edit::servers(&text).len(),
        certs::node::paths_in_yaml(&text, "/etc/kubernetes").len()
    ));
    Ok(sig)
}

pub const KUBECONFIG_PARSE: Target = Target {
    name: "kubeconfig_parse",
    about: "pki::kubeconfig::{looks_like, parse}, edit::kubeconfig::{clusters, references, servers}, node::paths_in_yaml",
    seeds: yaml_seeds,
    dict: YAML_DICT,
    run: kubeconfig_parse,
    known: &[],
};

// ---- kubeconfig_edit: set-server and set-ca, the output re-parsed ----

const SERVERS: &[&str] = &[
    "https://10.21.22.100:6443",
    "https://[fd00::100]:8443",
    "https://vip.example.com:6443",
    "http://127.0.0.1:8080",
];

fn ca_pem() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let (root, node) = kubeadm();
        node[&root.join("etc/kubernetes/pki/ca.crt")].clone()
    })
}

fn kubeconfig_edit_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, s) in yaml_seeds().into_iter().enumerate() {
        out.push(with((i * 37) as u8, &s));
        out.push(with((i * 37 + 0x80) as u8, &s));
    }
    out
}

/// `doc` with `clusters[*].cluster.FIELD` taken out, and the values taken.
fn take_field(doc: &mut Value, field: &str) -> Vec<Option<Value>> {
    let mut taken = Vec::new();
    if let Some(seq) = doc.get_mut("clusters").and_then(Value::as_sequence_mut) {
        for c in seq {
            let v = c
                .get_mut("cluster")
                .and_then(Value::as_mapping_mut)
                .and_then(|m| m.remove(field));
            taken.push(v);
        }
    }
    taken
}

fn kubeconfig_edit(input: &[u8]) -> Verdict {
    let (ctl, body) = split(input);
    let text = String::from_utf8_lossy(body);
    let names: Vec<String> = kc_edit::clusters(&text)
        .map(|c| c.into_iter().map(|c| c.name).collect())
        .unwrap_or_default();
    let cluster = match ctl & 3 {
        0 => None,
        3 => Some("no-such-cluster".to_string()),
        _ if names.is_empty() => None,
        _ => Some(names[(ctl as usize >> 2) % names.len()].clone()),
    };
    let (field, value, edited) = if ctl & 0x80 != 0 {
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(ca_pem());
        let r = kc_edit::set_ca_data(&text, ca_pem(), cluster.as_deref());
        ("certificate-authority-data", data, r)
    } else {
        let server = SERVERS[(ctl as usize >> 4) % SERVERS.len()];
        let r = kc_edit::set_server(&text, server, cluster.as_deref());
        ("server", server.to_string(), r)
    };
    let out = match edited {
        Ok(out) => out,
        Err(e) => return Ok(format!("{field} err {}", shape(&e.to_string()))),
    };
    // What other tools (kubectl, client-go) will read: the edited text must be YAML, mean the
    // original with only that field changed, and be read back by this tool.
    let mut after: Value = serde_yaml_ng::from_str(&out)
        .map_err(|e| format!("the edited kubeconfig does not re-parse as YAML: {e}"))?;
    let mut before: Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("an edit was made of a kubeconfig that is not YAML: {e}"))?;
    let was = take_field(&mut before, field);
    let now = take_field(&mut after, field);
    if before != after {
        return Err(format!(
            "the edit changed more than clusters[*].cluster.{field}: {}",
            out.chars().take(200).collect::<String>()
        ));
    }
    let new = Value::String(value);
    let mut changed = 0;
    for (w, n) in was.iter().zip(&now) {
        if w != n {
            if n.as_ref() != Some(&new) {
                return Err(format!(
                    "{field} became {n:?}, expected {new:?} or unchanged"
                ));
            }
            changed += 1;
        }
    }
    if changed == 0 && !was.iter().any(|w| w.as_ref() == Some(&new)) {
        return Err(format!(
            "the edit succeeded but no cluster's {field} is the new value"
        ));
    }
    kc_edit::clusters(&out).map_err(|e| format!("the edited kubeconfig is not read back: {e}"))?;
    let path = Path::new("/etc/kubernetes/admin.conf");
    if certs::pki::kubeconfig::parse(path, &text).is_ok() {
        certs::pki::kubeconfig::parse(path, &out)
            .map_err(|e| format!("the edited kubeconfig no longer parses as a kubeconfig: {e}"))?;
    }
    Ok(format!("{field} ok {changed}"))
}

pub const KUBECONFIG_EDIT: Target = Target {
    name: "kubeconfig_edit",
    about: "edit::kubeconfig::{set_server, set_ca_data}; the output re-parsed as YAML and compared with the input",
    seeds: kubeconfig_edit_seeds,
    dict: YAML_DICT,
    run: kubeconfig_edit,
    known: &[],
};
