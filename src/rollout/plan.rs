//! The rollout plan: a value built from a bundle and a profile, serialisable, printed by
//! `rollout plan` and `apply --dry-run`, and stored in the journal so that `resume` and
//! `rollback` need nothing else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::profile::{rank, Health, Profile, Restart};
use crate::error::{Error, Result};

/// The subset of `bundle.json` a rollout needs.
#[derive(Debug, Deserialize)]
pub struct BundleManifest {
    pub schema: String,
    pub ca: BundleCa,
    pub files: Vec<BundleEntry>,
}

#[derive(Debug, Deserialize)]
pub struct BundleCa {
    pub certificate: String,
}

#[derive(Debug, Deserialize)]
pub struct BundleEntry {
    pub bundle_path: PathBuf,
    #[serde(default)]
    pub ca: Option<PathBuf>,
    pub target: PathBuf,
    pub kind: String,
    pub role: String,
    pub components: Vec<String>,
    pub mode: String,
    pub old_sha256: String,
    pub new_sha256: String,
    pub old_serial: Option<String>,
    pub new_serial: Option<String>,
    pub sans: Option<SansAfter>,
}

#[derive(Debug, Deserialize)]
pub struct SansAfter {
    pub after: Vec<String>,
}

/// One file to replace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSwap {
    pub target: PathBuf,
    /// The new file, inside the bundle.
    pub source: PathBuf,
    pub kind: String,
    pub role: String,
    /// The CA that signed the new certificate.
    pub ca: PathBuf,
    pub mode: u32,
    pub old_sha256: String,
    pub new_sha256: String,
    pub old_serial: Option<String>,
    pub new_serial: Option<String>,
    /// SANs of the new certificate (`IP:…`, `DNS:…`), to tell which endpoint serves it.
    pub sans: Vec<String>,
}

/// How a gate trusts what the endpoint serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// Verify the served chain against this CA file (the one that signed what it serves).
    Ca(PathBuf),
    /// The component serves a certificate it made itself at start (controller-manager and
    /// scheduler without `--tls-cert-file`): no CA can verify it, so the gate proves liveness
    /// only, on a loopback address, and requires the served certificate to be self-signed.
    SelfSigned,
    /// Plain HTTP on loopback (kubelet and kube-proxy `/healthz`): liveness only.
    Plain,
}

impl Trust {
    pub fn describe(&self) -> String {
        match self {
            Trust::Ca(ca) => format!("verified against {}", ca.display()),
            Trust::SelfSigned => "self-signed (liveness only)".into(),
            Trust::Plain => "plain HTTP (liveness only)".into(),
        }
    }
}

/// `scheme://host:port` of a gate, the port checked (1-65535).
pub fn parse_url(
    url: &str,
) -> std::result::Result<(&'static str, crate::sys::tls::Target), String> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http", r)
    } else {
        return Err(format!(
            "expected an https:// or http:// URL, found `{url}`"
        ));
    };
    let target = format!("https://{rest}")
        .parse::<crate::sys::tls::Target>()
        .map_err(|e| format!("`{url}`: {e}"))?;
    if target.port == 0 {
        return Err(format!("`{url}`: port 0 is not a port"));
    }
    Ok((scheme, target))
}

/// A client certificate and key a probe presents (etcd with `--client-cert-auth`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A health gate: the endpoint must serve `serves`' serial (new after a swap, old after a
/// rollback), verified by `trust`, and answer `path` with 200.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gate {
    /// `https://host:port` or `http://host:port`.
    pub url: String,
    pub path: Option<String>,
    pub expect: Option<String>,
    pub trust: Trust,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Identity>,
    /// Index into `Plan::files` of the certificate this endpoint serves, if it is in the bundle.
    pub serves: Option<usize>,
    /// Where the endpoint was read from (`/etc/etcd.env: ETCD_LISTEN_CLIENT_URLS`, `--health`).
    #[serde(default)]
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    pub component: String,
    pub kind: String,
    /// None: files nobody restarts for (a kubeconfig for kubectl).
    pub restart: Option<Restart>,
    /// Indices into `Plan::files`, swapped together right before the restart.
    pub files: Vec<usize>,
    pub gates: Vec<Gate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    pub bundle: PathBuf,
    pub ca: PathBuf,
    pub profile: String,
    pub files: Vec<FileSwap>,
    pub steps: Vec<Step>,
}

/// Reads `bundle.json` and checks that every new file is intact.
pub fn read_bundle(dir: &Path) -> Result<BundleManifest> {
    let path = dir.join("bundle.json");
    let bytes = crate::sys::fs::read_file(&path)?;
    let manifest: BundleManifest = serde_json::from_slice(&bytes).map_err(|e| Error::Input {
        path: path.clone(),
        expected: "a certs bundle manifest (certs.bundle/v1)".into(),
        found: e.to_string(),
    })?;
    if manifest.schema != "certs.bundle/v1" {
        return Err(Error::Input {
            path,
            expected: "schema certs.bundle/v1".into(),
            found: manifest.schema.clone(),
        });
    }
    Ok(manifest)
}

/// Builds the plan: every bundle file assigned to the first component (in safe order) that uses
/// it; components with no changed file are left out.
pub fn build(dir: &Path, manifest: &BundleManifest, profile: &Profile) -> Result<Plan> {
    let dir = std::path::absolute(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca = PathBuf::from(&manifest.ca.certificate);
    let files: Vec<FileSwap> = manifest
        .files
        .iter()
        .map(|f| {
            Ok(FileSwap {
                target: f.target.clone(),
                source: dir.join(&f.bundle_path),
                kind: f.kind.clone(),
                role: f.role.clone(),
                ca: f.ca.clone().unwrap_or_else(|| ca.clone()),
                mode: u32::from_str_radix(&f.mode, 8).map_err(|_| Error::Input {
                    path: dir.join("bundle.json"),
                    expected: "an octal mode".into(),
                    found: f.mode.clone(),
                })?,
                old_sha256: f.old_sha256.clone(),
                new_sha256: f.new_sha256.clone(),
                old_serial: f.old_serial.clone(),
                new_serial: f.new_serial.clone(),
                sans: f.sans.as_ref().map(|s| s.after.clone()).unwrap_or_default(),
            })
        })
        .collect::<Result<_>>()?;
    let mut order: Vec<(usize, &super::profile::Component)> =
        profile.components.iter().enumerate().collect();
    order.sort_by_key(|(i, c)| (rank(&c.kind), *i));
    let mut taken = vec![false; files.len()];
    let mut steps = Vec::new();
    for (_, c) in order {
        let mine: Vec<usize> = (0..files.len())
            .filter(|&i| !taken[i])
            .filter(|&i| {
                if c.files.is_empty() {
                    manifest.files[i].components.iter().any(|k| k == &c.kind)
                } else {
                    c.files.iter().any(|f| same_file(f, &files[i].target))
                }
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        for &i in &mine {
            taken[i] = true;
        }
        if let Some(h) = c.health.iter().find(|h| h.url.contains('{')) {
            return Err(Error::Usage(format!(
                "cannot resolve the health endpoint `{}` of {} (no --advertise-address in its configuration); pass --health {}=https://ADDRESS:PORT/PATH",
                h.url, c.name, c.name
            )));
        }
        let gates = c
            .health
            .iter()
            .map(|h| gate(h, &mine, &files, &ca))
            .collect::<Result<_>>()?;
        steps.push(Step {
            component: c.name.clone(),
            kind: c.kind.clone(),
            restart: Some(c.restart.clone()),
            files: mine,
            gates,
        });
    }
    let rest: Vec<usize> = (0..files.len()).filter(|&i| !taken[i]).collect();
    if !rest.is_empty() {
        steps.push(Step {
            component: "files-only".into(),
            kind: "none".into(),
            restart: None,
            files: rest,
            gates: vec![],
        });
    }
    Ok(Plan {
        bundle: dir,
        ca,
        profile: profile.name.clone(),
        files,
        steps,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs(a) == abs(b)
}

fn gate(h: &Health, mine: &[usize], files: &[FileSwap], bundle_ca: &Path) -> Result<Gate> {
    let host = h
        .url
        .strip_prefix("https://")
        .and_then(|r| r.rsplit_once(':').map(|(h, _)| h).or(Some(r)))
        .unwrap_or("")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let serves = match &h.serves {
        Some(p) => mine
            .iter()
            .copied()
            .find(|&i| same_file(p, &files[i].target)),
        None => {
            let covers = |i: &usize| {
                let f = &files[*i];
                f.kind == "certificate"
                    && f.sans
                        .iter()
                        .any(|s| s == &format!("IP:{host}") || s == &format!("DNS:{host}"))
            };
            let preferred =
                |i: &usize| matches!(files[*i].role.as_str(), "etcd-server" | "apiserver");
            mine.iter()
                .copied()
                .filter(covers)
                .max_by_key(|i| (preferred(i), std::cmp::Reverse(*i)))
        }
    };
    // A gate verifies against the CA that signed what it serves, unless told otherwise.
    let ca =
        h.ca.clone()
            .or_else(|| serves.map(|i| files[i].ca.clone()))
            .unwrap_or_else(|| bundle_ca.to_path_buf());
    Ok(Gate {
        url: h.url.clone(),
        path: h.path.clone(),
        expect: h.expect.clone(),
        trust: Trust::Ca(ca),
        client: h
            .client_cert
            .clone()
            .zip(h.client_key.clone())
            .map(|(cert, key)| Identity { cert, key }),
        serves,
        origin: "profile".into(),
    })
}

impl Plan {
    /// Readable text for `rollout plan` and `apply --dry-run`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "plan for bundle {} (profile {}, CA {})\n",
            self.bundle.display(),
            self.profile,
            self.ca.display()
        );
        out.push_str("files:\n");
        for f in &self.files {
            let serial = match (&f.old_serial, &f.new_serial) {
                (Some(o), Some(n)) => format!(" serial {o} -> {n}"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {} <- {} ({}, mode {:04o}){serial}\n",
                f.target.display(),
                f.source.display(),
                f.kind,
                f.mode
            ));
        }
        out.push_str("steps, one at a time:\n");
        for (n, s) in self.steps.iter().enumerate() {
            let restart = match &s.restart {
                Some(Restart::Systemd(u)) => format!("systemctl restart {u}"),
                Some(Restart::StaticPod(m)) => {
                    format!("park and restore static pod manifest {}", m.display())
                }
                Some(Restart::Command(c)) => format!("run `{c}`"),
                None => "no restart".into(),
            };
            out.push_str(&format!(
                "  {}. {}: swap {} file(s), {restart}\n",
                n + 1,
                s.component,
                s.files.len()
            ));
            for g in &s.gates {
                let serial = g
                    .serves
                    .and_then(|i| self.files[i].new_serial.clone())
                    .map(|s| format!(", must serve serial {s}"))
                    .unwrap_or_default();
                let path = g
                    .path
                    .as_deref()
                    .map(|p| format!(", GET {p} must answer 200"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "     gate: {} {}{serial}{path}\n",
                    g.url,
                    g.trust.describe()
                ));
            }
        }
        out
    }
}
