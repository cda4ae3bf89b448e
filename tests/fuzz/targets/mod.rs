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

mod bundles;
mod kubeconfigs;
mod pem_and_keys;
mod sans;
mod unit_and_proxy;

pub use bundles::*;
pub use kubeconfigs::*;
pub use pem_and_keys::*;
pub use sans::*;
pub use unit_and_proxy::*;

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

/// The kubeadm fixture as the node the scanned file lives on: its CA beside the input, and the
/// files a kubeconfig may reference.
fn kubeadm() -> &'static (PathBuf, BTreeMap<PathBuf, Vec<u8>>) {
    static N: OnceLock<(PathBuf, BTreeMap<PathBuf, Vec<u8>>)> = OnceLock::new();
    N.get_or_init(|| {
        let root = fixtures().join("kubeadm");
        (root.clone(), files_under(&root).into_iter().collect())
    })
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
