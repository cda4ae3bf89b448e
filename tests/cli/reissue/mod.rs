//! `certs spec` against real cfssl, and `certs reissue` against openssl: the two field
//! scenarios, byte-identical subjects, new keys, kubeconfigs and every bad input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::{certs, cfssl_certinfo, fixture, openssl, openssl_sans, s_ref as s, tree_digest};

mod kubeconfigs;
mod output;
mod refusals;
mod scenarios;
mod spec;

/// An owned string of a path, for argument lists built from temporaries.
fn o(p: PathBuf) -> String {
    p.to_str().unwrap().to_string()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn subject_der(path: &Path) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let bytes = std::fs::read(path).unwrap();
    let der = pem::parse_many(&bytes)
        .ok()
        .and_then(|b| b.into_iter().find(|b| b.tag() == "CERTIFICATE"))
        .map(|b| b.into_contents())
        .unwrap_or(bytes);
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(&der).unwrap();
    c.subject().as_raw().to_vec()
}

fn pubkey(path: &Path) -> String {
    openssl(["x509", "-in", s(path), "-noout", "-pubkey"])
}

fn verify(ca: &Path, cert: &Path) {
    let out = openssl(["verify", "-CAfile", s(ca), s(cert)]);
    assert!(out.trim().ends_with(": OK"), "{out}");
    // And Go's x509 parser, kube-apiserver's, reads it.
    cfssl_certinfo(cert);
}

fn inspect_one(path: &Path) -> Value {
    let run = certs(["inspect", s(path), "-o", "json"]);
    run.json()["certificates"][0].clone()
}
