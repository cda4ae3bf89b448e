//! The metrics x509-certificate-exporter (enix) exposes for files and kubeconfigs, written in
//! the Prometheus text format for node_exporter's textfile collector, so that the exporter's
//! dashboards and alerts (`x509_cert_not_after - time()`, `$labels.subject_CN`,
//! `$labels.filepath`) work on nodes that do not run it.
//!
//! - `x509_cert_not_before`, `x509_cert_not_after`: Unix timestamps; `x509_cert_expired`: 1 once
//!   `now` is past notAfter. One series per certificate of a file, and per certificate a
//!   kubeconfig carries (cluster CAs and user client certificates, embedded or by reference).
//! - labels as the exporter sets them for files: `filename`, `filepath` (the path on the node,
//!   i.e. relative to `--root`), `serial_number` (decimal), `issuer_C`, `issuer_ST`,
//!   `issuer_L`, `issuer_O`, `issuer_OU`, `issuer_CN` and the same `subject_*` (the first value
//!   of each attribute, the last CN, as Go's `pkix.Name` keeps them; absent attributes have no
//!   label); for kubeconfigs also `embedded_kind` (`cluster` or `user`) and `embedded_key` (its
//!   name). Label names are sorted, as the Go client writes them.
//! - `x509_read_errors`: how many files (and kubeconfig entries) could not be read or parsed.
//! - no timestamps: node_exporter refuses a textfile that carries them.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Write};
use std::path::Path;

use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::node_path;
use crate::pki::cert::CertInfo;
use crate::pki::inventory::Inventory;
use crate::pki::kubeconfig::Source;

type Labels = Vec<(&'static str, String)>;

/// A metric's value for a certificate judged at `now`.
type Gauge = fn(&CertInfo, i64) -> i64;

struct Series<'a> {
    labels: Labels,
    info: &'a CertInfo,
}

/// Writes the metrics of `inv` judged at `inv.now`; paths are shown as seen from `root`.
pub fn write(out: &mut dyn Write, inv: &Inventory, root: &Path) -> io::Result<()> {
    let series = collect(inv, root);
    let now = inv.now;
    let families: [(&str, &str, Gauge); 3] = [
        (
            "x509_cert_expired",
            "Indicates if the certificate is expired",
            |c, now| i64::from(now > c.not_after),
        ),
        (
            "x509_cert_not_after",
            "Indicates the certificate's not after timestamp",
            |c, _| c.not_after,
        ),
        (
            "x509_cert_not_before",
            "Indicates the certificate's not before timestamp",
            |c, _| c.not_before,
        ),
    ];
    for (name, help, value) in families {
        if series.is_empty() {
            continue;
        }
        header(out, name, help)?;
        for s in &series {
            writeln!(
                out,
                "{name}{{{}}} {}",
                label_text(&s.labels),
                value(s.info, now)
            )?;
        }
    }
    header(
        out,
        "x509_read_errors",
        "Indicates the number of read failure(s)",
    )?;
    writeln!(out, "x509_read_errors {}", read_errors(inv))
}

fn header(out: &mut dyn Write, name: &str, help: &str) -> io::Result<()> {
    writeln!(out, "# HELP {name} {}", escape_help(help))?;
    writeln!(out, "# TYPE {name} gauge")
}

/// Every certificate to report, labelled; a label set seen before (the same certificate twice
/// in one file) is reported once, since a duplicate series makes node_exporter drop the file.
fn collect<'a>(inv: &'a Inventory, root: &Path) -> Vec<Series<'a>> {
    let mut out = Vec::new();
    let mut seen: HashSet<Labels> = HashSet::new();
    let mut push = |mut labels: Labels, info: &'a CertInfo| {
        labels.extend(cert_labels(info));
        labels.sort();
        if seen.insert(labels.clone()) {
            out.push(Series { labels, info });
        }
    };
    let file_labels = |path: &Path| -> Labels {
        vec![
            (
                "filename",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            ("filepath", node_path(path, root)),
        ]
    };
    for c in inv
        .certificates
        .iter()
        .filter(|c| c.location.embedded.is_none())
    {
        push(file_labels(&c.location.path), &c.info);
    }
    for kc in &inv.kubeconfigs {
        let embedded = |kind: &str, key: &str| {
            let mut l = file_labels(&kc.path);
            l.push(("embedded_kind", kind.to_string()));
            l.push(("embedded_key", key.to_string()));
            l
        };
        for (cluster, file_ca) in kc.config.clusters.iter().zip(&kc.cluster_cas) {
            let info = match &cluster.ca {
                Some(Source::Embedded(info)) => Some(&**info),
                Some(Source::File(_)) => file_ca.map(|i| &inv.certificates[i].info),
                _ => None,
            };
            if let Some(info) = info {
                push(embedded("cluster", &cluster.name), info);
            }
        }
        for (user, (cert, _)) in kc.config.users.iter().zip(&kc.users) {
            if let Some(i) = cert {
                push(embedded("user", &user.name), &inv.certificates[*i].info);
            }
        }
    }
    out
}

/// `serial_number` and the issuer's and subject's `C`, `ST`, `L`, `O`, `OU`, `CN`.
fn cert_labels(info: &CertInfo) -> Labels {
    let mut l = vec![("serial_number", decimal(&info.serial))];
    name_labels(&info.issuer_raw, ISSUER, &mut l);
    name_labels(&info.subject_raw, SUBJECT, &mut l);
    l
}

const ISSUER: [&str; 6] = [
    "issuer_C",
    "issuer_ST",
    "issuer_L",
    "issuer_O",
    "issuer_OU",
    "issuer_CN",
];
const SUBJECT: [&str; 6] = [
    "subject_C",
    "subject_ST",
    "subject_L",
    "subject_O",
    "subject_OU",
    "subject_CN",
];

/// What Go's `pkix.Name` keeps of a DER name: string values only, the first of each attribute,
/// but the last common name.
fn name_labels(raw: &[u8], names: [&'static str; 6], out: &mut Labels) {
    let Ok((_, name)) = X509Name::from_der(raw) else {
        return;
    };
    let strings = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue>| {
        it.filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let values = [
        strings(&mut name.iter_country()).into_iter().next(),
        strings(&mut name.iter_state_or_province())
            .into_iter()
            .next(),
        strings(&mut name.iter_locality()).into_iter().next(),
        strings(&mut name.iter_organization()).into_iter().next(),
        strings(&mut name.iter_organizational_unit())
            .into_iter()
            .next(),
        strings(&mut name.iter_common_name()).pop(),
    ];
    for (label, value) in names.into_iter().zip(values) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push((label, v));
        }
    }
}

/// The decimal form of an uppercase hex magnitude (Go's `big.Int.String`).
fn decimal(hex: &str) -> String {
    let mut digits: Vec<u8> = vec![0]; // little-endian base 10
    for c in hex.chars() {
        let Some(nibble) = c.to_digit(16) else {
            return hex.to_string();
        };
        let mut carry = nibble;
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 16 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

fn read_errors(inv: &Inventory) -> usize {
    let mut failed: BTreeSet<String> = inv
        .findings
        .iter()
        .filter(|f| f.code.is_read_error())
        .map(|f| f.path.clone())
        .collect();
    for kc in &inv.kubeconfigs {
        for cluster in &kc.config.clusters {
            if let Some(Source::Broken(_)) = cluster.ca {
                failed.insert(format!("{}#clusters[{}]", kc.path.display(), cluster.name));
            }
        }
    }
    failed.len()
}

fn label_text(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Label values: backslash, double quote and line feed escaped (text format 0.0.4).
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_decimal() {
        assert_eq!(decimal("00"), "0");
        assert_eq!(decimal("0A"), "10");
        assert_eq!(decimal("FF"), "255");
        assert_eq!(decimal("0100"), "256");
        // 2^64 and a 16-byte serial like the fixtures' (checked with Python's int(x, 16))
        assert_eq!(decimal("010000000000000000"), "18446744073709551616");
        assert_eq!(
            decimal("5F3A9C2E7B1D4A6F8E0C2B4D6F8A1C3E"),
            "126580980555857739814800300487360519230"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("two\nlines"), "two\\nlines");
        assert_eq!(escape_label("O=k8s, CN={x}"), "O=k8s, CN={x}");
        assert_eq!(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
    }
}
