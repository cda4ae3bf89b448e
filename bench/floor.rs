//! The verify FLOOR `bench/fleet.sh` compares `certs inspect` with: the least work that reads
//! every certificate of a tree and checks each one's signature, on one thread.
//!
//! ```text
//! cargo run --release --example bench-floor -- DIR
//! ```
//!
//! Walks DIR (symlinks followed, file-name order) and reads every file; takes the
//! `CERTIFICATE` blocks of PEM files (all blocks are decoded) and the `client-certificate-data`
//! of kubeconfigs (base64, then PEM); parses each certificate with x509-parser; then checks each
//! one's signature once, with aws-lc (x509-parser's `verify-aws`), against its issuer: the first
//! CA certificate whose subject and subject key identifier are the certificate's issuer and
//! authority key identifier (with no AKI: itself when self-issued, else the first CA whose
//! subject is its issuer). No roles, no key files, no JSON: what any inventory of the tree has
//! to do at least. Prints one line, `certificates=N verified=N failed=N files=N bytes=N
//! seconds=S`, on stdout.
#![allow(clippy::disallowed_methods)] // a benchmark program: std::fs and the clock directly

use std::collections::HashMap;
use std::time::Instant;

use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: bench-floor DIR");
        std::process::exit(2);
    };
    let started = Instant::now();
    let (mut files, mut bytes) = (0usize, 0usize);
    let mut ders: Vec<Vec<u8>> = Vec::new();
    for entry in walkdir::WalkDir::new(&dir)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry = entry.unwrap_or_else(|e| panic!("walking {dir}: {e}"));
        if entry.file_type().is_dir() {
            continue;
        }
        let data = std::fs::read(entry.path())
            .unwrap_or_else(|e| panic!("reading {}: {e}", entry.path().display()));
        files += 1;
        bytes += data.len();
        certificates_in(&data, &mut ders);
    }

    let certs: Vec<X509Certificate> = ders
        .iter()
        .map(|der| {
            X509Certificate::from_der(der)
                .expect("an X.509 certificate")
                .1
        })
        .collect();
    let mut by_id: HashMap<(&[u8], &[u8]), usize> = HashMap::new();
    let mut by_subject: HashMap<&[u8], usize> = HashMap::new();
    for (i, c) in certs.iter().enumerate() {
        if c.is_ca() {
            let subject = c.subject().as_raw();
            by_subject.entry(subject).or_insert(i);
            if let Some(ski) = key_id(c, true) {
                by_id.entry((subject, ski)).or_insert(i);
            }
        }
    }
    let (mut verified, mut failed) = (0usize, 0usize);
    for c in &certs {
        let issuer = c.issuer().as_raw();
        let found = match key_id(c, false) {
            Some(aki) => by_id.get(&(issuer, aki)).map(|&j| &certs[j]),
            // A self-issued CA without an AKI (kubeadm's): itself.
            None if issuer == c.subject().as_raw() => Some(c),
            None => by_subject.get(issuer).map(|&j| &certs[j]),
        };
        let ok = found.is_some_and(|p| c.verify_signature(Some(p.public_key())).is_ok());
        if ok {
            verified += 1;
        } else {
            failed += 1;
        }
    }
    println!(
        "certificates={} verified={verified} failed={failed} files={files} bytes={bytes} seconds={:.3}",
        certs.len(),
        started.elapsed().as_secs_f64()
    );
}

/// The DER of every certificate in one file: PEM `CERTIFICATE` blocks, or a kubeconfig's
/// `client-certificate-data` fields.
fn certificates_in(data: &[u8], out: &mut Vec<Vec<u8>>) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("-----BEGIN ") {
        for block in pem::parse_many(text).unwrap_or_default() {
            if block.tag() == "CERTIFICATE" {
                out.push(block.into_contents());
            }
        }
        return;
    }
    for line in text.lines() {
        let Some(b64) = line.trim_start().strip_prefix("client-certificate-data:") else {
            continue;
        };
        use base64::Engine;
        let Ok(pem_text) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            continue;
        };
        for block in pem::parse_many(pem_text).unwrap_or_default() {
            if block.tag() == "CERTIFICATE" {
                out.push(block.into_contents());
            }
        }
    }
}

/// The subject key identifier (`subject`) or the authority key identifier's key id.
fn key_id<'a>(c: &'a X509Certificate, subject: bool) -> Option<&'a [u8]> {
    c.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) if subject => Some(id.0),
            ParsedExtension::AuthorityKeyIdentifier(aki) if !subject => {
                aki.key_identifier.as_ref().map(|id| id.0)
            }
            _ => None,
        })
}
