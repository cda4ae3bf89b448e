//! The cfssl CSR spec (`*-csr.json`, cloudflare/cfssl `csr/csr.go` `CertificateRequest`), and its
//! faithful reconstruction from an existing certificate.

use serde::{Deserialize, Serialize};

use super::san::{EditOutcome, San};
use crate::pki::cert::CertInfo;
use crate::pki::key::KeyAlgo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsrSpec {
    #[serde(rename = "CN")]
    pub cn: String,
    pub hosts: Vec<String>,
    /// Always written: cfssl falls back to ecdsa/256 when it is missing.
    pub key: KeyAlgo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<CaBlock>,
}

/// One `names` entry. cfssl concatenates the entries' values per attribute, so the i-th value
/// of each attribute goes into the i-th entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    #[serde(rename = "C", default, skip_serializing_if = "String::is_empty")]
    pub c: String,
    #[serde(rename = "ST", default, skip_serializing_if = "String::is_empty")]
    pub st: String,
    #[serde(rename = "L", default, skip_serializing_if = "String::is_empty")]
    pub l: String,
    #[serde(rename = "O", default, skip_serializing_if = "String::is_empty")]
    pub o: String,
    #[serde(rename = "OU", default, skip_serializing_if = "String::is_empty")]
    pub ou: String,
    #[serde(rename = "E", default, skip_serializing_if = "String::is_empty")]
    pub e: String,
    #[serde(
        rename = "SerialNumber",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub serial_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaBlock {
    pub expiry: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pathlen: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pathlenzero: bool,
}

/// A spec plus what could not be carried into it (attributes cfssl has no field for).
pub struct Reconstructed {
    pub spec: CsrSpec,
    pub notes: Vec<String>,
}

/// The spec that makes cfssl issue `cert` again: subject from the Subject (never the Issuer),
/// hosts from the SANs, key from the public key.
pub fn reconstruct(cert: &CertInfo) -> Result<Reconstructed, super::Error> {
    let sans = super::san::from_cert(&cert.sans)?;
    let mut notes = Vec::new();
    let mut columns: [(&str, Vec<String>); 7] = [
        ("C", vec![]),
        ("ST", vec![]),
        ("L", vec![]),
        ("O", vec![]),
        ("OU", vec![]),
        ("E", vec![]),
        ("SerialNumber", vec![]),
    ];
    let mut cn = String::new();
    for (attr, value) in cert.subject_rdns().iter().flatten() {
        if attr == "CN" {
            if cn.is_empty() {
                cn = value.clone();
            } else {
                notes.push(format!(
                    "a second CN `{value}` has no place in a cfssl spec"
                ));
            }
            continue;
        }
        match columns.iter_mut().find(|(name, _)| name == attr) {
            Some((_, values)) => values.push(value.clone()),
            None => notes.push(format!(
                "subject attribute {attr}=`{value}` has no place in a cfssl spec"
            )),
        }
    }
    let rows = columns.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let at = |i: usize, col: usize| columns[col].1.get(i).cloned().unwrap_or_default();
    let names = (0..rows)
        .map(|i| Name {
            c: at(i, 0),
            st: at(i, 1),
            l: at(i, 2),
            o: at(i, 3),
            ou: at(i, 4),
            e: at(i, 5),
            serial_number: at(i, 6),
        })
        .collect();
    let ca = cert.is_ca.then(|| CaBlock {
        expiry: format!("{}h", (cert.not_after - cert.not_before) / 3600),
        pathlen: cert.path_len,
        pathlenzero: cert.path_len == Some(0),
    });
    Ok(Reconstructed {
        spec: CsrSpec {
            cn,
            hosts: sans.iter().map(San::host).collect(),
            key: cert.key.clone(),
            names,
            ca,
        },
        notes,
    })
}

impl CsrSpec {
    /// The spec with its hosts replaced by an edit's result.
    pub fn with_sans(mut self, outcome: &EditOutcome) -> CsrSpec {
        self.hosts = outcome.sans.iter().map(San::host).collect();
        self
    }

    /// The hosts as typed SANs.
    pub fn sans(&self) -> Result<Vec<San>, super::Error> {
        self.hosts.iter().map(|h| San::parse(h)).collect()
    }
}
