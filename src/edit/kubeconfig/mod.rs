//! Kubeconfig edits as text: the `server:` or `certificate-authority-data:` value of a cluster is
//! replaced where it stands, with its indentation, quoting style, trailing comment and line
//! ending, so the diff against the original is one line per cluster changed and every other
//! byte is identical (comments, key order, `extensions`, other clusters, users' credentials).
//!
//! The YAML is read twice: as a document (serde), which says what the kubeconfig means and
//! catches a malformed one, and as lines, which say where each value is written. The edited text
//! is parsed again and must mean exactly the original with that one value changed; anything
//! else (a layout the line reader misjudged) is refused rather than written.
//!
//! Block-style YAML as kubectl, kubeadm, kubeasz and cfssl-era scripts write it is edited; a
//! kubeconfig whose clusters are in flow style (`{…}`, JSON) or whose value is a multi-line,
//! block, anchored or tagged scalar is refused with a line saying so.

use super::error::Error;
use serde_yaml_ng::Value;

mod text;
use text::replace;

/// A cluster entry as the kubeconfig writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub name: String,
    /// `server:`, if the cluster has one.
    pub server: Option<String>,
    /// `certificate-authority-data:` as written (base64 of PEM), if any.
    pub ca_data: Option<String>,
    /// `certificate-authority:`, a file reference, if any (as written: relative to the
    /// kubeconfig's directory when relative).
    pub ca_file: Option<String>,
}

/// A file a kubeconfig names and a client will read (a `*-data` field beside it overrides the
/// file, which is then not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `clusters[NAME].certificate-authority`, `users[NAME].client-certificate`,
    /// `users[NAME].client-key`.
    pub at: String,
    /// As written: relative to the kubeconfig's directory when relative.
    pub path: String,
}

/// The clusters of a kubeconfig, in file order.
pub fn clusters(text: &str) -> Result<Vec<Cluster>, Error> {
    let doc = document(text)?;
    read_clusters(&doc)
}

/// `(cluster, server)` for every cluster, in file order (an empty server when it has none);
/// nothing for a text that is not a kubeconfig.
pub fn servers(text: &str) -> Vec<(String, String)> {
    clusters(text)
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.name, c.server.unwrap_or_default()))
        .collect()
}

/// Every file the kubeconfig makes a client read: cluster CAs and users' client certificates
/// and keys given by reference.
pub fn references(text: &str) -> Result<Vec<Reference>, Error> {
    let doc = document(text)?;
    let mut out = Vec::new();
    for c in read_clusters(&doc)? {
        if let (None, Some(path)) = (&c.ca_data, c.ca_file) {
            out.push(Reference {
                at: format!("clusters[{}].certificate-authority", c.name),
                path,
            });
        }
    }
    let users = match doc.get("users") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Sequence(s)) => s.as_slice(),
        Some(other) => {
            return Err(Error::Kubeconfig(format!(
                "expected `users:` to be a list, found {}",
                kind_of(other)
            )))
        }
    };
    for (n, u) in users.iter().enumerate() {
        let name = u
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{n}"), str::to_string);
        let Some(user) = u.get("user") else { continue };
        for (file, data) in [
            ("client-certificate", "client-certificate-data"),
            ("client-key", "client-key-data"),
        ] {
            let set = |k: &str| {
                user.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.trim().is_empty())
                    .map(str::to_string)
            };
            if let (None, Some(path)) = (set(data), set(file)) {
                out.push(Reference {
                    at: format!("users[{name}].{file}"),
                    path,
                });
            }
        }
    }
    Ok(out)
}

/// The kubeconfig with the `server:` of `cluster` replaced by `server`.
///
/// Without a cluster name: every cluster, provided they all point at the same server now (one
/// cluster, or several entries for one apiserver); clusters pointing at different servers are
/// ambiguous and refused. An unknown name, a cluster without a `server:` line, a malformed
/// kubeconfig or a server that is not an `https://` (or `http://`) URL is an error of one line
/// saying what was expected and what was found.
pub fn set_server(text: &str, server: &str, cluster: Option<&str>) -> Result<String, Error> {
    check_url(server)?;
    let doc = document(text)?;
    let all = read_clusters(&doc)?;
    let chosen = select(&all, cluster, "servers", |c| c.server.as_deref())?;
    for &i in &chosen {
        if all[i].server.is_none() {
            return Err(Error::Kubeconfig(format!(
                "expected cluster `{}` to have a `server:` line to replace, found none",
                all[i].name
            )));
        }
    }
    replace(text, &doc, &all, &chosen, "server", server)
}

/// The kubeconfig with the `certificate-authority-data:` of `cluster` replaced by the base64 of
/// `ca_pem` (PEM CA certificates: one, or a bundle of old and new during a CA rotation).
///
/// A cluster that names its CA by file (`certificate-authority:`) is refused: that file, not the
/// kubeconfig, is what must change. Cluster selection is as for [`set_server`], by CA.
pub fn set_ca_data(text: &str, ca_pem: &[u8], cluster: Option<&str>) -> Result<String, Error> {
    check_ca_pem(ca_pem)?;
    let doc = document(text)?;
    let all = read_clusters(&doc)?;
    let chosen = select(&all, cluster, "CAs", |c| {
        c.ca_data.as_deref().or(c.ca_file.as_deref())
    })?;
    for &i in &chosen {
        let c = &all[i];
        match (&c.ca_data, &c.ca_file) {
            (Some(_), _) => {}
            (None, Some(file)) => {
                return Err(Error::Kubeconfig(format!(
                    "cluster `{}` reads its CA from the file `{file}` (certificate-authority:), not from the kubeconfig: that file is what must change",
                    c.name
                )))
            }
            (None, None) => {
                return Err(Error::Kubeconfig(format!(
                    "expected cluster `{}` to have a `certificate-authority-data:` line to replace, found none (it trusts the system roots or skips verification)",
                    c.name
                )))
            }
        }
    }
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    replace(
        text,
        &doc,
        &all,
        &chosen,
        "certificate-authority-data",
        &data,
    )
}

/// The kubeconfig with the `client-certificate-data:` (and, given a key, `client-key-data:`) of
/// the user named `user` replaced by the base64 of the PEM given; every other byte as it was.
///
/// The values are found in the parsed document (its exact byte spans), not by scanning lines,
/// so an entry written `- user: {…}` before its `name:` is edited where it stands. The edited
/// text is read again and must mean the original with those values changed, nothing else.
pub fn set_user_credentials(
    text: &str,
    user: &str,
    cert_pem: &str,
    key_pem: Option<&str>,
) -> Result<String, Error> {
    use super::yaml::{self, Node, Style};
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.replace("\r\n", "\n"));
    let doc = document(text)?;
    let tree = yaml::parse(text)?;
    let entries = match tree.get("users") {
        Some(Node::Sequence(items)) => items,
        _ => {
            return Err(Error::Kubeconfig(format!(
                "expected a `users:` list holding user `{user}`, found none"
            )))
        }
    };
    let named: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].get("name").and_then(Node::as_str) == Some(user))
        .collect();
    let i = match named[..] {
        [i] => i,
        [] => {
            return Err(Error::Kubeconfig(format!(
                "user `{user}` not found in the kubeconfig"
            )))
        }
        _ => {
            return Err(Error::Kubeconfig(format!(
                "expected user `{user}` once in the kubeconfig, found it {} times",
                named.len()
            )))
        }
    };
    let fields = entries[i].get("user");
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut wanted: Vec<(&str, String)> = vec![("client-certificate-data", b64(cert_pem))];
    if let Some(k) = key_pem {
        wanted.push(("client-key-data", b64(k)));
    }
    for (key, value) in &wanted {
        match fields.and_then(|f| f.get(key)) {
            Some(Node::Scalar {
                style,
                start,
                end,
                decorated: false,
                ..
            }) if *style != Style::Block => {
                let token = match style {
                    Style::Single => format!("'{value}'"),
                    Style::Double => format!("\"{value}\""),
                    _ => value.clone(),
                };
                edits.push((*start, *end, token));
            }
            Some(Node::Scalar { .. }) => {
                return Err(Error::Kubeconfig(format!(
                    "expected the `{key}:` of user `{user}` as a one-line value, found a block scalar, anchor or tag: edit it by hand"
                )))
            }
            _ => {
                return Err(Error::Kubeconfig(format!(
                    "user `{user}` has no {key} value to replace"
                )))
            }
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, token) in edits {
        out.replace_range(start..end, &token);
    }
    // The edit must mean exactly the original with this user's credentials changed.
    let mut expected = doc;
    if let Some(Value::Mapping(u)) = expected
        .get_mut("users")
        .and_then(|v| v.get_mut(i))
        .and_then(|v| v.get_mut("user"))
    {
        for (key, value) in wanted {
            u.insert(Value::String(key.into()), Value::String(value));
        }
    }
    let got: Value = serde_yaml_ng::from_str(&out).map_err(|e| {
        Error::Kubeconfig(format!(
            "expected the edited kubeconfig to read back, found {}: kubeconfig left as it was",
            one_line(&e.to_string())
        ))
    })?;
    if got != expected {
        return Err(Error::Kubeconfig(format!(
            "expected the edit to change only user `{user}`'s credentials, found it would change more: kubeconfig left as it was, edit it by hand"
        )));
    }
    Ok(out)
}

// ---- the document ----

fn document(text: &str) -> Result<Value, Error> {
    let doc: Value = crate::pki::yaml::from_str(text).map_err(|e| {
        Error::Kubeconfig(format!(
            "expected a kubeconfig (YAML), found a parse error: {}",
            one_line(&e.to_string())
        ))
    })?;
    if !doc.is_mapping() {
        return Err(Error::Kubeconfig(format!(
            "expected a kubeconfig (a YAML mapping with `clusters:`), found {}",
            kind_of(&doc)
        )));
    }
    match doc.get("kind").and_then(Value::as_str) {
        None | Some("Config") => Ok(doc),
        Some(other) => Err(Error::Kubeconfig(format!(
            "expected a kubeconfig (kind: Config), found kind: {other}"
        ))),
    }
}

fn read_clusters(doc: &Value) -> Result<Vec<Cluster>, Error> {
    let items = match doc.get("clusters") {
        Some(Value::Sequence(s)) => s,
        None | Some(Value::Null) => {
            return Err(Error::Kubeconfig(
                "expected a kubeconfig with a `clusters:` list, found none".into(),
            ))
        }
        Some(other) => {
            return Err(Error::Kubeconfig(format!(
                "expected `clusters:` to be a list, found {}",
                kind_of(other)
            )))
        }
    };
    let mut out: Vec<Cluster> = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let name = match item.get("name") {
            Some(Value::String(s)) => s.clone(),
            other => {
                return Err(Error::Kubeconfig(format!(
                    "expected clusters[{n}] to have a `name:`, found {}",
                    other.map_or("none".into(), kind_of)
                )))
            }
        };
        let cluster = match item.get("cluster") {
            Some(c @ Value::Mapping(_)) => c,
            other => {
                return Err(Error::Kubeconfig(format!(
                    "expected cluster `{name}` to have a `cluster:` mapping, found {}",
                    other.map_or("none".into(), kind_of)
                )))
            }
        };
        let field = |key: &str| -> Result<Option<String>, Error> {
            match cluster.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Error::Kubeconfig(format!(
                    "expected the `{key}:` of cluster `{name}` to be a string, found {}",
                    kind_of(other)
                ))),
            }
        };
        if out.iter().any(|c| c.name == name) {
            return Err(Error::Kubeconfig(format!(
                "expected each cluster name once, found `{name}` twice"
            )));
        }
        out.push(Cluster {
            server: field("server")?,
            ca_data: field("certificate-authority-data")?.filter(|s| !s.trim().is_empty()),
            ca_file: field("certificate-authority")?.filter(|s| !s.trim().is_empty()),
            name,
        });
    }
    if out.is_empty() {
        return Err(Error::Kubeconfig(
            "expected a kubeconfig with at least one cluster, found none".into(),
        ));
    }
    Ok(out)
}

/// The clusters to edit: the one named, or every one when they agree on the value edited.
fn select(
    all: &[Cluster],
    name: Option<&str>,
    what: &str,
    value: impl Fn(&Cluster) -> Option<&str>,
) -> Result<Vec<usize>, Error> {
    let names = || {
        all.iter()
            .map(|c| format!("`{}`", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => all
            .iter()
            .position(|c| c.name == n)
            .map(|i| vec![i])
            .ok_or_else(|| {
                Error::Kubeconfig(format!(
                    "expected a cluster named `{n}`, found only {}",
                    names()
                ))
            }),
        None => {
            let first = value(&all[0]);
            if all.iter().all(|c| value(c) == first) {
                Ok((0..all.len()).collect())
            } else {
                Err(Error::Kubeconfig(format!(
                    "expected one cluster, or clusters that agree, found {} clusters with different {what} ({}): name the one to change",
                    all.len(),
                    names()
                )))
            }
        }
    }
}

fn check_url(server: &str) -> Result<(), Error> {
    let bad = |why: &str| {
        Err(Error::Kubeconfig(format!(
            "expected a server URL https://HOST[:PORT] ({why}), found `{server}`"
        )))
    };
    let rest = match server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
    {
        Some(r) => r,
        None => return bad("scheme https:// or http://"),
    };
    if server.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("no spaces");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return bad("a host");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return bad("a port after `]:`"),
            },
            None => return bad("a closing `]`"),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            Some(_) => return bad("an IPv6 address in brackets"),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return bad("a host");
    }
    if let Some(p) = port {
        if !matches!(p.parse::<u16>(), Ok(1..)) {
            return bad("a port from 1 to 65535");
        }
    }
    Ok(())
}

/// Whether `pem_bytes` is what a kubeconfig may embed as its CA: PEM CA certificates, nothing
/// else (a private key passed by mistake is refused).
pub fn check_ca_pem(pem_bytes: &[u8]) -> Result<(), Error> {
    let text = std::str::from_utf8(pem_bytes).map_err(|_| {
        Error::Kubeconfig("expected PEM CA certificates, found binary data (DER?)".into())
    })?;
    let blocks = pem::parse_many(text)
        .map_err(|e| Error::Kubeconfig(format!("expected PEM CA certificates, found {e}")))?;
    if blocks.is_empty() {
        return Err(Error::Kubeconfig(
            "expected PEM CA certificates, found no PEM block".into(),
        ));
    }
    for b in &blocks {
        if b.tag() != "CERTIFICATE" {
            return Err(Error::Kubeconfig(format!(
                "expected PEM CA certificates only, found a {} block",
                b.tag()
            )));
        }
        let info = crate::pki::cert::CertInfo::from_der(b.contents()).map_err(|e| {
            Error::Kubeconfig(format!(
                "expected PEM CA certificates, found an unreadable one ({e})"
            ))
        })?;
        if !info.is_ca {
            return Err(Error::Kubeconfig(format!(
                "expected CA certificates (basicConstraints CA:TRUE), found a leaf ({})",
                info.subject
            )));
        }
    }
    Ok(())
}

fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string `{}`", one_line(s)),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

/// `s` on one line, any encoded body in it (a key's base64) withheld.
fn one_line(s: &str) -> String {
    crate::pki::decode::withhold_encoded(s)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
#[cfg(test)]
mod tests {
    use super::*;

    const KUBEADM: &str = "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tQ0E=
    server: https://10.21.22.73:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: LS0tQ0VSVA==
    client-key-data: LS0tS0VZ
";

    /// The lines that differ (same line count expected).
    fn changed(a: &str, b: &str) -> Vec<(String, String)> {
        assert_eq!(a.lines().count(), b.lines().count(), "{b}");
        a.split_inclusive('\n')
            .zip(b.split_inclusive('\n'))
            .filter(|(x, y)| x != y)
            .map(|(x, y)| (x.to_string(), y.to_string()))
            .collect()
    }

    #[test]
    fn one_line_changes_in_kubectl_layout() {
        let out = set_server(KUBEADM, "https://10.21.22.101:6443", None).unwrap();
        assert_eq!(
            changed(KUBEADM, &out),
            [(
                "    server: https://10.21.22.73:6443\n".to_string(),
                "    server: https://10.21.22.101:6443\n".to_string()
            )]
        );
        assert_eq!(
            servers(&out),
            [(
                "kubernetes".to_string(),
                "https://10.21.22.101:6443".to_string()
            )]
        );
        let named = set_server(KUBEADM, "https://10.21.22.101:6443", Some("kubernetes")).unwrap();
        assert_eq!(named, out);
    }

    #[test]
    fn every_committed_fixture_kubeconfig_is_a_one_line_edit() {
        let fixtures = [
            include_str!("../../../fixtures/kubeadm/etc/kubernetes/admin.conf"),
            include_str!("../../../fixtures/kubeadm/etc/kubernetes/controller-manager.conf"),
            include_str!("../../../fixtures/kubeadm/etc/kubernetes/kubelet.conf"),
            include_str!("../../../fixtures/kubeadm/etc/kubernetes/scheduler.conf"),
            include_str!("../../../fixtures/kubeadm/etc/kubernetes/super-admin.conf"),
            include_str!("../../../fixtures/kubespray/etc/kubernetes/admin.conf"),
            include_str!("../../../fixtures/binary/etc/kubernetes/kube-proxy.kubeconfig"),
            include_str!("../../../fixtures/kubeasz-ecdsa/etc/kubernetes/kube-proxy.kubeconfig"),
        ];
        let pem = ca_pem();
        for text in fixtures {
            let out = set_server(text, "https://10.99.0.1:8443", None).unwrap();
            assert_eq!(changed(text, &out).len(), 1);
            assert_eq!(servers(&out)[0].1, "https://10.99.0.1:8443");
            let out = set_ca_data(text, &pem, None).unwrap();
            assert_eq!(changed(text, &out).len(), 1);
        }
    }

    #[test]
    fn keeps_quotes_comments_indentation_and_crlf() {
        let text = "kind: Config\r\nclusters:\r\n  - name: \"prod\"\r\n    cluster:\r\n      server: \"https://old:8443\"   # the VIP\r\n      insecure-skip-tls-verify: true\r\n  - name: 'lab'\r\n    cluster:\r\n      server: 'https://lab:6443'\r\nusers: []\r\n";
        let out = set_server(text, "https://192.168.1.40:8443", Some("prod")).unwrap();
        assert_eq!(
            changed(text, &out),
            [(
                "      server: \"https://old:8443\"   # the VIP\r\n".to_string(),
                "      server: \"https://192.168.1.40:8443\"   # the VIP\r\n".to_string()
            )]
        );
        let out = set_server(text, "https://lab2:6443", Some("lab")).unwrap();
        assert_eq!(
            changed(text, &out),
            [(
                "      server: 'https://lab:6443'\r\n".to_string(),
                "      server: 'https://lab2:6443'\r\n".to_string()
            )]
        );
    }

    #[test]
    fn no_trailing_newline_and_extensions_before_server() {
        let text = "clusters:\n- cluster:\n    extensions:\n    - extension:\n        server: not-this-one\n      name: x\n    server: https://a:6443\n  name: c\nusers: []";
        let out = set_server(text, "https://b:6443", None).unwrap();
        assert!(out.ends_with("users: []"));
        assert_eq!(changed(text, &out).len(), 1);
        assert!(out.contains("server: not-this-one"));
        assert!(out.contains("    server: https://b:6443\n"));
    }

    #[test]
    fn several_clusters_need_a_name_unless_they_agree() {
        let text = "clusters:\n- cluster:\n    server: https://a:6443\n  name: one\n- cluster:\n    server: https://b:6443\n  name: two\n";
        let err = set_server(text, "https://c:6443", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`one`") && err.contains("`two`"), "{err}");
        let err = set_server(text, "https://c:6443", Some("three"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("expected a cluster named `three`, found only `one`, `two`"),
            "{err}"
        );
        let out = set_server(text, "https://c:6443", Some("two")).unwrap();
        assert_eq!(
            servers(&out),
            [
                ("one".to_string(), "https://a:6443".to_string()),
                ("two".to_string(), "https://c:6443".to_string())
            ]
        );
        let same = text.replace("https://b:6443", "https://a:6443");
        let out = set_server(&same, "https://c:6443", None).unwrap();
        assert_eq!(changed(&same, &out).len(), 2);
    }

    #[test]
    fn malformed_and_unsupported_are_one_line_errors() {
        for (text, says) in [
            ("clusters: [\n", "parse error"),
            ("kind: Pod\nspec: {}\n", "kind: Pod"),
            ("apiVersion: v1\nusers: []\n", "`clusters:` list"),
            ("clusters:\n- name: a\n", "`cluster:` mapping"),
            (
                "{\"clusters\": [{\"name\": \"a\", \"cluster\": {\"server\": \"https://a\"}}]}",
                "block style",
            ),
            (
                "clusters:\n- name: a\n  cluster:\n    server: >\n      https://a\n",
                "block scalar",
            ),
            (
                "clusters:\n- name: a\n  cluster:\n    server: https://a\n      :6443\n",
                "continued",
            ),
            (
                "clusters:\n- name: a\n  cluster:\n    insecure-skip-tls-verify: true\n",
                "a `server:` line",
            ),
        ] {
            let err = set_server(text, "https://b:6443", None)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn server_must_be_a_url() {
        for bad in [
            "10.0.0.1:6443",
            "https://",
            "https://a:0",
            "https://a:99999",
            "https://a b",
            "https://fe80::1:6443",
        ] {
            assert!(set_server(KUBEADM, bad, None).is_err(), "{bad}");
        }
        for good in [
            "https://[fe80::1]:6443",
            "https://vip.example.com",
            "http://127.0.0.1:8080",
        ] {
            set_server(KUBEADM, good, None).unwrap();
        }
    }

    #[test]
    fn a_value_needing_quotes_is_quoted() {
        // `https://a:6443/p #x` would read as a comment in a plain scalar.
        let out = set_server(KUBEADM, "https://a:6443/p#x", None).unwrap();
        assert_eq!(servers(&out)[0].1, "https://a:6443/p#x");
    }

    fn ca_pem() -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(vec![]).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&key).unwrap().pem().into_bytes()
    }

    #[test]
    fn ca_data_is_replaced_and_a_file_reference_is_named() {
        use base64::Engine;
        let pem = ca_pem();
        let out = set_ca_data(KUBEADM, &pem, None).unwrap();
        assert_eq!(changed(KUBEADM, &out).len(), 1);
        let data = clusters(&out).unwrap()[0].ca_data.clone().unwrap();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap(),
            pem
        );
        let by_file = KUBEADM.replace(
            "certificate-authority-data: LS0tQ0E=",
            "certificate-authority: /etc/kubernetes/ssl/ca.pem",
        );
        let err = set_ca_data(&by_file, &pem, None).unwrap_err().to_string();
        assert!(
            err.contains("`/etc/kubernetes/ssl/ca.pem`")
                && err.contains("that file is what must change"),
            "{err}"
        );
        let err = set_ca_data(
            KUBEADM,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PRIVATE KEY"), "{err}");
    }

    #[test]
    fn user_credentials_are_edited_where_the_document_has_them() {
        // base64: ALICE QUxJQ0U=, OLD T0xE, NEW TkVX, K2 SzI=.
        let text = "kind: Config\nclusters: []\nusers:\n- user: {client-certificate-data: QUxJQ0U=, client-key-data: 'T0xE'}  # alice\n  name: alice\n- name: bob\n  user:\n    client-certificate-data: QUxJQ0U=\n    client-key-data: T0xE\n";
        let out = set_user_credentials(text, "alice", "NEW", Some("K2")).unwrap();
        assert_eq!(
            out,
            text.replacen("QUxJQ0U=", "TkVX", 1)
                .replacen("'T0xE'", "'SzI='", 1)
        );
        let out = set_user_credentials(text, "bob", "NEW", None).unwrap();
        assert_eq!(
            out,
            text.replace(
                "    client-certificate-data: QUxJQ0U=",
                "    client-certificate-data: TkVX"
            )
        );
    }

    #[test]
    fn user_credentials_that_cannot_be_edited_exactly_are_refused() {
        for (text, says) in [
            ("users:\n- name: a\n  user: {}\n- name: a\n  user: {}\n", "found it 2 times"),
            ("users:\n- name: b\n  user: {}\n", "`a` not found"),
            ("users:\n- name: a\n  user:\n    client-certificate-data: |\n      QUxJQ0U=\n", "block scalar"),
            ("users:\n- name: a\n  user:\n    client-certificate: /x.pem\n", "no client-certificate-data"),
            ("users:\n- name: a\n  user:\n    client-certificate-data: &c QUxJQ0U=\n- name: b\n  user:\n    client-certificate-data: *c\n", "anchor"),
        ] {
            let err = set_user_credentials(text, "a", "NEW", None).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn references_are_files_without_data() {
        let text = "clusters:\n- cluster:\n    certificate-authority: ca.pem\n    server: https://a\n  name: a\nusers:\n- name: u\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem\n- name: v\n  user:\n    client-certificate: x.pem\n    client-certificate-data: LS0t\n";
        let refs = references(text).unwrap();
        let at: Vec<&str> = refs.iter().map(|r| r.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "clusters[a].certificate-authority",
                "users[u].client-certificate",
                "users[u].client-key"
            ]
        );
    }
}
