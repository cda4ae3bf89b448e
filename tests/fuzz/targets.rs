//! The fuzz targets: each runs one input through a parser (or a parser and the edit built on
//! it) and checks what came out. Seeds are the committed fixtures, read at run time. Where an
//! input needs a choice besides its text (which file name, which cluster to edit, which server
//! to retire), the input's first byte makes it, so the choice is fuzzed too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use certs::edit::{config as etcd_config, kubeconfig as kc_edit, proxy};
use certs::pki::decode::{self, Item};
use certs::pki::inventory::{Inventory, Options};
use certs::spec::san::{self, San, SanEdit};
use certs::sys::fs::Walked;
use serde_yaml_ng::Value;

use super::engine::{files_under, fixtures, shape, Target, Verdict};

pub const ALL: &[Target] = &[
    PEM_SCAN,
    KEY_DECODE,
    KUBECONFIG_PARSE,
    KUBECONFIG_EDIT,
    SAN,
    UNIT_CONFIG,
    PROXY_CONFIG,
    BUNDLE_JSON,
];

pub fn by_name(name: &str) -> Option<&'static Target> {
    ALL.iter().find(|t| t.name == name)
}

/// Every fixture file (all trees), once per process.
fn all_fixtures() -> &'static [(PathBuf, Vec<u8>)] {
    static F: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    F.get_or_init(|| {
        files_under(&fixtures())
            .into_iter()
            .filter(|(p, b)| {
                // The generator's source and scripts are not node files.
                !p.extension().is_some_and(|e| e == "rs" || e == "sh") && b.len() <= 256 << 10
            })
            .collect()
    })
}

fn text_fixtures(pred: impl Fn(&Path, &str) -> bool) -> Vec<Vec<u8>> {
    all_fixtures()
        .iter()
        .filter_map(|(p, b)| {
            let t = std::str::from_utf8(b).ok()?;
            pred(p, t).then(|| b.clone())
        })
        .collect()
}

/// `input` as the control byte and the rest.
fn split(input: &[u8]) -> (u8, &[u8]) {
    match input.split_first() {
        Some((c, rest)) => (*c, rest),
        None => (0, input),
    }
}

/// A seed with its control byte.
fn with(ctl: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(bytes.len() + 1);
    v.push(ctl);
    v.extend_from_slice(bytes);
    v
}

/// Fails when `message` quotes 64 or more base64 characters of an input that holds a private
/// key (issue 12 item 4: a key body in a finding).
fn no_key_body(input: &[u8], message: &str) -> Result<(), String> {
    let text = String::from_utf8_lossy(input);
    if !text.contains("PRIVATE KEY") {
        return Ok(());
    }
    let b64 = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
    let mut run = String::new();
    for c in message.chars().chain(std::iter::once(' ')) {
        if b64(c) {
            run.push(c);
            continue;
        }
        if run.len() >= 64 && text.contains(&run) {
            return Err(format!(
                "a message quotes {} characters of a private key's body (`{}…`)",
                run.len(),
                &run[..16]
            ));
        }
        run.clear();
    }
    Ok(())
}

// ---- pem_scan: the PEM/DER scanner and the inventory it feeds ----

const NAMES: &[&str] = &[
    "etc/kubernetes/pki/apiserver.crt",
    "etc/kubernetes/pki/apiserver.key",
    "etc/kubernetes/ssl/ca.pem",
    "etc/kubernetes/admin.conf",
    "etc/kubernetes/kubeconfig",
    "etc/kubernetes/pki/sa.pub",
    "etc/kubernetes/pki/apiserver.csr",
    "etc/kubernetes/ssl/ca-config.json",
    "etc/kubernetes/ssl/etcd-csr.json",
    "etc/kubernetes/pki/ca.der",
    "etc/kubernetes/notes.txt",
    "etc/kubernetes/kube-proxy.kubeconfig",
];

fn name_for(path: &Path) -> u8 {
    let file = path.file_name().unwrap().to_string_lossy();
    let ext = path.extension().map(|e| e.to_string_lossy().to_string());
    let i = NAMES
        .iter()
        .position(|n| n.ends_with(&*file))
        .or_else(|| {
            let ext = ext.as_deref()?;
            NAMES.iter().position(|n| n.ends_with(&format!(".{ext}")))
        })
        .unwrap_or(10);
    i as u8
}

/// The kubeadm fixture as the node the scanned file lives on: its CA beside the input, and the
/// files a kubeconfig may reference.
fn kubeadm() -> &'static (PathBuf, BTreeMap<PathBuf, Vec<u8>>) {
    static N: OnceLock<(PathBuf, BTreeMap<PathBuf, Vec<u8>>)> = OnceLock::new();
    N.get_or_init(|| {
        let root = fixtures().join("kubeadm");
        (root.clone(), files_under(&root).into_iter().collect())
    })
}

fn read_node(path: &Path) -> Walked {
    match kubeadm().1.get(path) {
        Some(b) => Walked::File {
            path: path.to_path_buf(),
            bytes: b.clone(),
        },
        None => Walked::Problem {
            path: path.to_path_buf(),
            code: certs::sys::fs::Unread::Unreadable,
            message: "no such file".into(),
        },
    }
}

fn pem_scan_seeds() -> Vec<Vec<u8>> {
    all_fixtures()
        .iter()
        .map(|(p, b)| with(name_for(p), b))
        .collect()
}

fn pem_scan(input: &[u8]) -> Verdict {
    let (ctl, bytes) = split(input);
    let (root, node) = kubeadm();
    let path = root.join(NAMES[ctl as usize % NAMES.len()]);
    let decoded = decode::decode(&path, bytes);
    let mut sig = String::new();
    for item in &decoded.items {
        sig.push_str(match item {
            Item::Cert { .. } => "C",
            Item::Key { .. } => "K",
            Item::Csr(_) => "R",
            Item::Kubeconfig(_) => "Y",
            Item::CfsslCsr(_) => "J",
            Item::CfsslConfig { .. } => "G",
        });
    }
    // Every message at once: decoding the input per message made this check quadratic (a
    // 256 KiB input with 10,000 broken BEGIN lines took seconds in the harness, not in certs).
    no_key_body(bytes, &decoded.problems.join("\n"))?;
    for p in &decoded.problems {
        sig.push_str(&format!("|{}", shape(p)));
    }
    // The scanned file among its CA and the CA's key, linked as a scan links them.
    let ca = root.join("etc/kubernetes/pki/ca.crt");
    let ca_key = root.join("etc/kubernetes/pki/ca.key");
    let mut walked = vec![Walked::File {
        path: path.clone(),
        bytes: bytes.to_vec(),
    }];
    for p in [ca, ca_key] {
        if p != path {
            walked.push(Walked::File {
                bytes: node[&p].clone(),
                path: p,
            });
        }
    }
    let opts = Options {
        now: 1_800_000_000,
        warn_within: 30 * 86_400,
        root,
    };
    let inv = Inventory::build(walked, &opts, &read_node);
    let messages: Vec<&str> = inv.findings.iter().map(|f| f.message.as_str()).collect();
    no_key_body(bytes, &messages.join("\n"))?;
    for f in &inv.findings {
        sig.push_str(&format!(";{}", f.code));
    }
    sig.push_str(&format!(
        "/{}c{}k{}y",
        inv.certificates.len(),
        inv.keys.len(),
        inv.kubeconfigs.len()
    ));
    Ok(sig)
}

pub const PEM_SCAN: Target = Target {
    name: "pem_scan",
    about: "pki::decode (PEM blocks, DER, kubeconfigs, cfssl JSON) and the inventory linking one file with a CA",
    seeds: pem_scan_seeds,
    dict: &[
        b"-----BEGIN ",
        b"-----END ",
        b"CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n",
        b"-----END CERTIFICATE-----\n",
        b"-----BEGIN RSA PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY----\n",
        b"-----BEGIN EC PRIVATE KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\n",
        b"Proc-Type: 4,ENCRYPTED\n",
        b"kind: Config\n",
        b"client-certificate-data: ",
        b"client-key: /etc/kubernetes/pki/ca.key\n",
        b"certificate-authority: ",
        b"\"hosts\": [",
        b"{\"CN\": ",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
    ],
    run: pem_scan,
    known: &[],
};

// ---- key_decode: the key decoders, the signing-key loader and the certificate decoder ----

const LABELS: &[&str] = &[
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "CERTIFICATE",
    "CERTIFICATE REQUEST",
];

fn key_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, b) in all_fixtures() {
        let Ok(text) = std::str::from_utf8(b) else {
            continue;
        };
        for block in pem::parse_many(text).unwrap_or_default() {
            let label = LABELS.iter().position(|l| *l == block.tag()).unwrap_or(0);
            out.push(with(label as u8, block.contents()));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn key_decode(input: &[u8]) -> Verdict {
    let (ctl, der) = split(input);
    let label = LABELS[ctl as usize % LABELS.len()];
    let encrypted = ctl >= 0xf0;
    let mut sig = String::new();
    match certs::pki::key::read_key_block(label, der, encrypted) {
        Ok(k) => sig.push_str(&format!("ok {:?} {}", k.format, k.algo.is_some())),
        Err(e) => sig.push_str(&shape(&e.to_string())),
    }
    match certs::issue::key::SigningKey::from_pem_block(label, der, encrypted) {
        Ok(k) => {
            // The public key it would put in a certificate must be a SubjectPublicKeyInfo.
            let spki = k.spki_der().map_err(|e| e.to_string())?;
            use x509_parser::prelude::FromDer;
            match x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki) {
                Ok(([], _)) => {}
                _ => {
                    return Err(format!(
                        "a loaded signing key's SPKI does not re-parse ({} bytes)",
                        spki.len()
                    ))
                }
            }
            sig.push_str(&format!("|sign {}", k.algo()));
        }
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    match certs::pki::cert::CertInfo::from_der(der) {
        Ok(c) => sig.push_str(&format!("|cert {} {}", c.is_ca, c.sans.is_empty())),
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    Ok(sig)
}

pub const KEY_DECODE: Target = Target {
    name: "key_decode",
    about: "pki::key::read_key_block (PKCS#1, SEC1, PKCS#8, SPKI), issue::key::SigningKey::from_pem_block, pki::cert::CertInfo::from_der on DER",
    seeds: key_seeds,
    dict: &[b"\x30\x82", b"\x02\x01\x00", b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01", b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", b"\x03\x42\x00\x04", b"\xa0\x03\x02\x01\x02", b"\x05\x00"],
    run: key_decode,
    known: &[],
};

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

// ---- san: --add-san/--drop-san parsing, the edit, and the certificate it signs ----

struct Signer {
    ca: certs::issue::Ca,
    original: certs::pki::cert::CertInfo,
    current: Vec<San>,
}

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| {
        // The ECDSA fixture: signing is fast enough to sign every input.
        let ssl = fixtures().join("kubeasz-ecdsa/etc/kubernetes/ssl");
        let ca = certs::issue::target::explicit_ca(&ssl.join("ca.pem"), &ssl.join("ca-key.pem"))
            .expect("the kubeasz-ecdsa CA loads");
        let leaf = std::fs::read(ssl.join("kubernetes.pem")).unwrap();
        let block = pem::parse(&leaf).unwrap();
        let original = certs::pki::cert::CertInfo::from_der(block.contents()).unwrap();
        let current = san::from_cert(&original.sans).unwrap();
        Signer {
            ca,
            original,
            current,
        }
    })
}

fn san_seeds() -> Vec<Vec<u8>> {
    let mut names: Vec<String> = Vec::new();
    for (p, b) in all_fixtures() {
        let name = p.to_string_lossy();
        if name.ends_with("-csr.json") {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
                for h in v["hosts"].as_array().into_iter().flatten() {
                    names.extend(h.as_str().map(str::to_string));
                }
            }
        }
        if let Ok(text) = std::str::from_utf8(b) {
            for block in pem::parse_many(text).unwrap_or_default() {
                if block.tag() != "CERTIFICATE" {
                    continue;
                }
                if let Ok(c) = certs::pki::cert::CertInfo::from_der(block.contents()) {
                    names.extend(c.sans.all().map(str::to_string));
                }
            }
        }
    }
    names.sort();
    names.dedup();
    let mut out: Vec<Vec<u8>> = names.iter().map(|n| n.clone().into_bytes()).collect();
    // Drops of what the signing fixture has, and a few edits of several lines.
    for s in &signer().current {
        out.push(format!("-{}", s.host()).into_bytes());
    }
    for w in names.chunks(3) {
        out.push(w.join("\n").into_bytes());
    }
    out
}

/// What Go's crypto/x509 (kube-apiserver, cfssl, kubectl) checks of a SAN when it parses a
/// certificate: dNSName, rfc822Name and URI are IA5Strings (ASCII), and a URI must be one
/// `net/url` parses, with a host made of non-empty labels.
fn go_san_check(kind: &str, s: &str) -> Result<(), String> {
    if !s.is_ascii() {
        return Err(format!(
            "{kind} SAN {s:?} is not an IA5String (RFC 5280: ASCII only); Go's x509 refuses the certificate"
        ));
    }
    if kind != "URI" {
        return Ok(());
    }
    let bad = |why: &str| {
        Err(format!(
            "URI SAN {s:?} {why}; Go's x509 refuses the certificate"
        ))
    };
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return bad("has a control character");
    }
    let Some(colon) = s.find(':') else {
        return bad("has no scheme");
    };
    let scheme = &s[..colon];
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return bad("has no valid scheme");
    }
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return bad("has a malformed %-escape");
        }
    }
    if let Some(rest) = s[colon + 1..].strip_prefix("//") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit('@').next().unwrap_or("");
        if hostport.contains(' ')
            || hostport.contains(['<', '>', '"', '{', '}', '|', '\\', '^', '`'])
        {
            return bad("has an invalid character in its host");
        }
        let host = if hostport.starts_with('[') {
            hostport
        } else {
            hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
        };
        if !host.is_empty() && !host.starts_with('[') && host.split('.').any(str::is_empty) {
            return bad("has an empty label in its host");
        }
    }
    Ok(())
}

/// The certificate the tool wrote, re-parsed strictly: x509-parser, no trailing bytes, every
/// extension understood, the SANs asked for and only those, each acceptable to Go.
fn strict_cert(der: &[u8], want: &[San]) -> Result<(), String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("a written certificate does not re-parse: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "a written certificate has {} trailing bytes",
            rest.len()
        ));
    }
    for ext in cert.extensions() {
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(format!(
                "extension {} of a written certificate does not parse: {error}",
                ext.oid
            ));
        }
    }
    let mut got: Vec<String> = Vec::new();
    if let Ok(Some(s)) = cert.subject_alternative_name() {
        for gn in &s.value.general_names {
            match gn {
                GeneralName::DNSName(d) => {
                    go_san_check("DNS", d)?;
                    got.push(format!("DNS:{d}"));
                }
                GeneralName::RFC822Name(e) => {
                    go_san_check("email", e)?;
                    got.push(format!("email:{e}"));
                }
                GeneralName::URI(u) => {
                    go_san_check("URI", u)?;
                    got.push(format!("URI:{u}"));
                }
                GeneralName::IPAddress(b) => {
                    let ip: std::net::IpAddr = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).unwrap().into(),
                        16 => <[u8; 16]>::try_from(*b).unwrap().into(),
                        n => return Err(format!("an IP SAN of {n} bytes was written")),
                    };
                    got.push(format!("IP:{ip}"));
                }
                other => return Err(format!("an unexpected SAN was written: {other:?}")),
            }
        }
    }
    let mut want: Vec<String> = want.iter().map(ToString::to_string).collect();
    got.sort();
    want.sort();
    if got != want {
        return Err(format!(
            "the written SANs {got:?} are not the ones asked for {want:?}"
        ));
    }
    Ok(())
}

fn san_target(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let (mut add, mut drop) = (Vec::new(), Vec::new());
    for line in text.lines().take(64) {
        match line.strip_prefix('-') {
            Some(d) => drop.push(d.to_string()),
            None => add.push(line.to_string()),
        }
    }
    let edit = match SanEdit::parse(&add, &drop) {
        Ok(e) => e,
        Err(e) => return Ok(format!("parse {}", shape(&e.to_string()))),
    };
    let s = signer();
    let outcome = match san::apply(&s.current, &edit, true) {
        Ok(o) => o,
        Err(e) => return Ok(format!("apply {}", shape(&e.to_string()))),
    };
    let req = certs::issue::Request {
        original: &s.original,
        sans: &outcome.sans,
        policy: certs::issue::KeyPolicy::Keep,
        validity: Some(365 * 86_400),
        now: s.original.not_before + 86_400,
    };
    let issued = match certs::issue::sign(&s.ca, &req) {
        Ok(i) => i,
        Err(e) => return Ok(format!("sign {}", shape(&e.to_string()))),
    };
    strict_cert(&issued.der, &outcome.sans)?;
    let kinds: String = outcome
        .sans
        .iter()
        .map(|s| match s {
            San::Dns(_) => 'd',
            San::Email(_) => 'e',
            San::Ip(_) => 'i',
            San::Uri(_) => 'u',
        })
        .collect();
    Ok(format!(
        "signed {kinds} +{} -{}",
        outcome.added.len(),
        outcome.removed.len()
    ))
}

pub const SAN: Target = Target {
    name: "san",
    about: "spec::san (SanEdit::parse, apply), issue::sign; every certificate re-parsed by x509-parser with Go's SAN rules",
    seeds: san_seeds,
    dict: &[
        b"IP:",
        b"DNS:",
        b"IP Address:",
        b"*.",
        b"http://",
        b"https://",
        b"spiffe://cluster.local/ns/a",
        b"urn:x",
        b"@",
        b"::",
        b"::ffff:",
        b"%",
        b"%zz",
        b" ",
        b"..",
        b"xn--",
        b"\xc3\xbc",
        b"\xe2\x80\x8b",
        b"\n-",
        b"\n",
        b"255.255.255.255",
        b"[fd00::1]",
        b"localhost",
    ],
    run: san_target,
    known: &[],
};

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

// ---- bundle_json: a bundle manifest read as `rollout` and as `reissue --into` read it ----

struct Bundle {
    dir: tempfile::TempDir,
    /// Bundle directory → files in it.
    files: BTreeMap<PathBuf, Vec<u8>>,
    manifests: Vec<Vec<u8>>,
}

/// Real bundles, made from the fixtures by the `certs` binary once per process.
fn bundles() -> &'static Bundle {
    static B: OnceLock<Bundle> = OnceLock::new();
    B.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let k8s = fixtures().join("kubeadm/etc/kubernetes");
        let b = |s: &str| dir.path().join(s);
        let runs: Vec<Vec<std::ffi::OsString>> = vec![
            vec![
                "reissue".into(),
                k8s.join("pki/apiserver.crt").into(),
                k8s.join("admin.conf").into(),
                "--add-san".into(),
                "10.21.22.100".into(),
                "--out".into(),
                b("reissue").into(),
            ],
            vec![
                "kubeconfig".into(),
                "set-server".into(),
                "https://10.21.22.100:6443".into(),
                k8s.join("admin.conf").into(),
                k8s.join("scheduler.conf").into(),
                "--out".into(),
                b("vip").into(),
            ],
        ];
        for args in runs {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_certs"))
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut files = BTreeMap::new();
        let mut manifests = Vec::new();
        for (p, bytes) in files_under(dir.path()) {
            if p.file_name().is_some_and(|n| n == "bundle.json") {
                manifests.push(bytes.clone());
            }
            files.insert(p, bytes);
        }
        Bundle {
            dir,
            files,
            manifests,
        }
    })
}

fn bundle_seeds() -> Vec<Vec<u8>> {
    bundles().manifests.clone()
}

fn bundle_json(input: &[u8]) -> Verdict {
    let b = bundles();
    // Resolved against the reissue bundle's files, as they are.
    let dir = b.dir.path().join("reissue");
    let read = |p: &Path| b.files.get(p).cloned();
    let mut sig = match certs::edit::bundle::existing(&dir, input, &read) {
        Ok(v) => format!("ok {}", v["files"].as_array().map_or(0, Vec::len)),
        Err(e) => shape(&e.to_string()),
    };
    let scratch = b.dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::write(scratch.join("bundle.json"), input).unwrap();
    match certs::rollout::plan::read_bundle(&scratch) {
        Ok(m) => sig.push_str(&format!("|ok {}", m.files.len())),
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    Ok(sig)
}

pub const BUNDLE_JSON: Target = Target {
    name: "bundle_json",
    about: "rollout::plan::read_bundle and edit::bundle::existing on a bundle.json (seeds: bundles the binary makes from the fixtures)",
    seeds: bundle_seeds,
    dict: &[
        b"\"schema\": \"certs.bundle/v1\"",
        b"\"bundle_path\": \"../../etc/passwd\"",
        b"\"target\": \"/etc/kubernetes/pki/../../../victim\"",
        b"\"mode\": \"0777\"",
        b"\"mode\": \"99999999999\"",
        b"\"kind\": \"kubeconfig\"",
        b"\"new_sha256\": \"\"",
        b"null",
        b"[]",
        b"{}",
        b"\"\\u0000\"",
        b"1e999",
        b"-0",
        b",",
    ],
    run: bundle_json,
    known: &[],
};
