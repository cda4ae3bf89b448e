//! `certs inspect` on every fixture layout, against openssl's reading of the same files.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use crate::util::{cert, certs, ends, fixture, openssl, tree_digest, NOW};

mod bad_inputs;
mod endpoints;
mod exit_codes;
mod layouts;

const LAYOUTS: &[&str] = &["kubeadm", "kubespray", "binary", "kubeasz-ecdsa", "broken"];

fn inspect_json(dir: &Path) -> Value {
    let run = certs(["inspect", dir.to_str().unwrap(), "-o", "json", "--now", NOW]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    run.json()
}

/// The DER of the certificate a JSON entry describes, taken from the file the way openssl
/// cannot (the n-th PEM block, or base64 embedded in a kubeconfig).
fn der_of(entry: &Value) -> Vec<u8> {
    let path = entry["path"].as_str().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let index = entry["index"].as_u64().unwrap() as usize;
    if let Some(field) = entry["embedded"].as_str() {
        // users[NAME].client-certificate-data: the value on the line after that user's name.
        let text = String::from_utf8(bytes).unwrap();
        let user = field
            .trim_start_matches("users[")
            .split(']')
            .next()
            .unwrap();
        let after_user = &text[text.find(&format!("name: {user}")).unwrap()..];
        let line = after_user
            .lines()
            .find(|l| l.trim_start().starts_with("client-certificate-data:"))
            .unwrap();
        let b64 = line.split(':').nth(1).unwrap().trim();
        use base64::Engine;
        let pem_text = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        return pem::parse(pem_text).unwrap().into_contents();
    }
    match pem::parse_many(&bytes) {
        Ok(blocks) if !blocks.is_empty() => blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .nth(index)
            .unwrap()
            .into_contents(),
        _ => bytes,
    }
}

struct OpensslView {
    subject: String,
    not_after: String,
    sans: BTreeSet<String>,
    key_bits: u64,
    serial: String,
}

fn openssl_view(der: &[u8]) -> OpensslView {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), der).unwrap();
    let p = tmp.path().to_str().unwrap();
    let head = openssl([
        "x509",
        "-inform",
        "DER",
        "-in",
        p,
        "-noout",
        "-subject",
        "-nameopt",
        "sep_comma_plus_space,sname,utf8",
        "-enddate",
        "-dateopt",
        "iso_8601",
        "-serial",
        "-ext",
        "subjectAltName",
    ]);
    let text = openssl(["x509", "-inform", "DER", "-in", p, "-noout", "-text"]);
    let field = |prefix: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} in {head}"))
            .trim()
            .to_string()
    };
    let mut sans = BTreeSet::new();
    let mut lines = head.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("X509v3 Subject Alternative Name") {
            for name in lines.next().unwrap().split(", ") {
                let name = name.trim();
                if let Some(ip) = name.strip_prefix("IP Address:") {
                    sans.insert(ip.parse::<IpAddr>().unwrap().to_string());
                } else if let Some(dns) = name.strip_prefix("DNS:") {
                    sans.insert(dns.to_string());
                } else {
                    sans.insert(name.to_string());
                }
            }
        }
    }
    let key_bits = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Public-Key: (")
                .map(|r| r.split(' ').next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| {
            assert!(text.contains("ED25519 Public-Key"), "no key size in {text}");
            256
        });
    // "2034-12-31 00:00:00Z" → RFC 3339
    let not_after = field("notAfter=").replacen(' ', "T", 1);
    OpensslView {
        subject: field("subject="),
        not_after,
        sans,
        key_bits,
        serial: field("serial="),
    }
}
