//! Rendering an inventory: kubeadm-like tables, or the JSON schema documented in README.md
//! (`certs.inspect/v1`; fields are only ever added to it).

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Value};

use super::args::Output;
use super::config::InspectConfig;
use crate::duration::{rfc3339, short_human};
use crate::pki::cert::CertInfo;
use crate::pki::inventory::{CertEntry, Inventory, Status};
use crate::pki::kubeconfig::Source;
use crate::pki::Severity;
use crate::sys::tls::Trust;

/// A live endpoint's served chain, leaf first.
pub struct Endpoint {
    pub url: String,
    pub trust: Trust,
    pub handshake_error: Option<String>,
    pub chain: Vec<CertInfo>,
}

pub fn inspect(
    out: &mut dyn Write,
    inv: &Inventory,
    endpoints: &[Endpoint],
    c: &InspectConfig,
) -> io::Result<()> {
    match c.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut *out, &report(inv, endpoints))?;
            writeln!(out)
        }
        Output::Table | Output::Wide => tables(out, inv, endpoints, c),
        Output::Kubeadm | Output::KubeadmJson | Output::Prometheus => {
            super::inspect::write_report(out, inv, c)
        }
    }
}

/// kubeadm's `Jan 02, 2006 15:04 MST`, always UTC.
fn kubeadm_date(unix: i64) -> String {
    let fmt =
        time::macros::format_description!("[month repr:short] [day], [year] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[derive(Serialize)]
struct CertJson<'a> {
    path: String,
    index: usize,
    embedded: Option<&'a str>,
    role: &'a str,
    subject: &'a str,
    issuer: &'a str,
    serial: &'a str,
    not_before: String,
    not_after: String,
    residual_seconds: i64,
    status: &'a str,
    sans: &'a crate::pki::cert::Sans,
    key: &'a crate::pki::key::KeyAlgo,
    is_ca: bool,
    path_len: Option<u32>,
    key_usage: &'a [String],
    ext_key_usage: &'a [String],
    subject_key_id: Option<&'a str>,
    authority_key_id: Option<&'a str>,
    signature_algorithm: &'a str,
    sha256: &'a str,
    self_signed: bool,
    signed_by: Option<String>,
    key_path: Option<String>,
}

fn cert_json<'a>(
    path: String,
    index: usize,
    embedded: Option<&'a str>,
    role: &'a str,
    status: Status,
    info: &'a CertInfo,
    now: i64,
) -> CertJson<'a> {
    CertJson {
        path,
        index,
        embedded,
        role,
        subject: &info.subject,
        issuer: &info.issuer,
        serial: &info.serial,
        not_before: rfc3339(info.not_before),
        not_after: rfc3339(info.not_after),
        residual_seconds: info.not_after - now,
        status: status.as_str(),
        sans: &info.sans,
        key: &info.key,
        is_ca: info.is_ca,
        path_len: info.path_len,
        key_usage: &info.key_usage,
        ext_key_usage: &info.ext_key_usage,
        subject_key_id: info.subject_key_id.as_deref(),
        authority_key_id: info.authority_key_id.as_deref(),
        signature_algorithm: &info.signature_algorithm,
        sha256: &info.sha256,
        self_signed: false,
        signed_by: None,
        key_path: None,
    }
}

fn entry_json<'a>(inv: &'a Inventory, c: &'a CertEntry) -> CertJson<'a> {
    let mut j = cert_json(
        c.location.path.display().to_string(),
        c.location.index,
        c.location.embedded.as_deref(),
        c.role.as_str(),
        c.status,
        &c.info,
        inv.now,
    );
    j.signed_by = c
        .signed_by
        .map(|i| inv.certificates[i].location.to_string());
    j.key_path = c.key.map(|k| inv.keys[k].location.to_string());
    j.self_signed = c
        .signed_by
        .is_some_and(|i| std::ptr::eq(&inv.certificates[i], c));
    j
}

#[derive(Serialize)]
struct KeyJson<'a> {
    path: String,
    index: usize,
    embedded: &'a Option<String>,
    format: &'a crate::pki::key::KeyFormat,
    private: bool,
    encrypted: bool,
    key: &'a Option<crate::pki::key::KeyAlgo>,
    certificates: Vec<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    now: String,
    warn_within_seconds: i64,
    certificates: Vec<CertJson<'a>>,
    keys: Vec<KeyJson<'a>>,
    kubeconfigs: Vec<Value>,
    csrs: Vec<Value>,
    cfssl: Vec<Value>,
    endpoints: Vec<Value>,
    findings: &'a [crate::pki::inventory::Finding],
}

fn report<'a>(inv: &'a Inventory, endpoints: &[Endpoint]) -> Report<'a> {
    let certificates: Vec<_> = inv
        .certificates
        .iter()
        .map(|c| entry_json(inv, c))
        .collect();
    let mut pairs_of: Vec<Vec<String>> = vec![Vec::new(); inv.keys.len()];
    for c in &inv.certificates {
        if let Some(k) = c.key {
            pairs_of[k].push(c.location.to_string());
        }
    }
    let keys: Vec<KeyJson> = inv
        .keys
        .iter()
        .enumerate()
        .map(|(k, key)| KeyJson {
            path: key.location.path.display().to_string(),
            index: key.location.index,
            embedded: &key.location.embedded,
            format: &key.info.format,
            private: key.info.format.is_private(),
            encrypted: key.info.format.is_encrypted(),
            key: &key.info.algo,
            certificates: std::mem::take(&mut pairs_of[k]),
        })
        .collect();
    let kubeconfigs: Vec<Value> = inv
        .kubeconfigs
        .iter()
        .map(|kc| {
            let users: Vec<Value> = kc
                .config
                .users
                .iter()
                .zip(&kc.users)
                .map(|(u, (cert, key))| {
                    json!({
                        "name": u.name,
                        "client_certificate": source_json(&u.client_cert, cert.map(|i| {
                            let e = &inv.certificates[i];
                            json!({
                                "path": e.location.to_string(),
                                "subject": e.info.subject,
                                "not_after": rfc3339(e.info.not_after),
                                "status": e.status.as_str(),
                                "signed_by": e.signed_by.map(|s| inv.certificates[s].location.to_string()),
                                "key_matches": key.is_some() && e.key == *key,
                            })
                        })),
                        "client_key": source_json(&u.client_key, key.map(|k| json!({"path": inv.keys[k].location.to_string()}))),
                    })
                })
                .collect();
            let clusters: Vec<Value> = kc
                .config
                .clusters
                .iter()
                .zip(&kc.cluster_cas)
                .map(|(cl, ca)| {
                    let detail = match &cl.ca {
                        Some(Source::Embedded(info)) => Some(json!({"subject": info.subject, "sha256": info.sha256})),
                        _ => None,
                    };
                    json!({
                        "name": cl.name,
                        "server": cl.server,
                        "certificate_authority": source_json(&cl.ca, detail),
                        "matches_ca": ca.map(|i| inv.certificates[i].location.to_string()),
                    })
                })
                .collect();
            json!({
                "path": kc.path.display().to_string(),
                "server": kc.config.server,
                "current_context": kc.config.current_context,
                "current_user": kc.config.current_user,
                "clusters": clusters,
                "users": users,
            })
        })
        .collect();
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|e| {
            let (trust, detail) = trust_words(&e.trust);
            let chain: Vec<_> = e
                .chain
                .iter()
                .enumerate()
                .map(|(i, info)| {
                    let status = Status::at(inv.now, inv.warn_within, info.not_before, info.not_after);
                    let mut j = cert_json(e.url.clone(), i, None, "served", status, info, inv.now);
                    j.self_signed = info.is_signed_by(info);
                    j
                })
                .collect();
            json!({"url": e.url, "trust": trust, "detail": detail, "handshake_error": e.handshake_error, "chain": chain})
        })
        .collect();
    let csrs: Vec<Value> = inv
        .csrs
        .iter()
        .map(|(p, c)| json!({"path": p.display().to_string(), "subject": c.subject, "sans": c.sans, "key": c.key}))
        .collect();
    let cfssl: Vec<Value> = inv
        .cfssl_csrs
        .iter()
        .map(|(p, s)| json!({"path": p.display().to_string(), "kind": "csr", "CN": s.cn, "hosts": s.hosts}))
        .chain(inv.cfssl_configs.iter().map(|(p, profiles)| {
            json!({"path": p.display().to_string(), "kind": "ca-config", "profiles": profiles})
        }))
        .collect();
    Report {
        schema: "certs.inspect/v1",
        now: rfc3339(inv.now),
        warn_within_seconds: inv.warn_within,
        certificates,
        keys,
        kubeconfigs,
        csrs,
        cfssl,
        endpoints,
        findings: &inv.findings,
    }
}

fn source_json<T>(source: &Option<Source<T>>, detail: Option<Value>) -> Value {
    let (kind, path, error) = match source {
        None => return Value::Null,
        Some(Source::Embedded(_)) => ("embedded", None, None),
        Some(Source::File(p)) => ("file", Some(p.display().to_string()), None),
        Some(Source::Broken(e)) => ("broken", None, Some(e.clone())),
    };
    let mut v = json!({"source": kind, "file": path, "error": error});
    if let (Some(Value::Object(extra)), Value::Object(map)) = (detail, &mut v) {
        map.extend(extra);
    }
    v
}

fn trust_words(t: &Trust) -> (&'static str, Option<String>) {
    match t {
        Trust::Verified => ("verified", None),
        Trust::NameNotCovered { name, detail } => {
            ("name-not-covered", Some(format!("{name}: {detail}")))
        }
        Trust::Untrusted { reason } => ("untrusted", Some(reason.clone())),
        Trust::NotChecked => ("not-checked", None),
    }
}

/// Paths in tables are shown relative to `--root` when they lie under it.
fn short(path: &Path, root: &Path) -> String {
    if root != Path::new("/") {
        if let Ok(rel) = path.strip_prefix(root) {
            return format!("/{}", rel.display());
        }
    }
    path.display().to_string()
}

fn short_loc(inv: &Inventory, i: usize, root: &Path) -> String {
    let loc = &inv.certificates[i].location;
    let mut s = short(&loc.path, root);
    if let Some(f) = &loc.embedded {
        s.push('#');
        s.push_str(f.split('.').next().unwrap_or(f));
    } else if loc.index > 0 {
        s.push_str(&format!("#{}", loc.index));
    }
    s
}

fn residual(info: &CertInfo, now: i64) -> String {
    short_human(info.not_after - now)
}

fn tables(
    out: &mut dyn Write,
    inv: &Inventory,
    endpoints: &[Endpoint],
    c: &InspectConfig,
) -> io::Result<()> {
    let root = c.root.as_path();
    let wide = c.output == Output::Wide;
    let mut leaves = Table::new(
        &[
            "CERTIFICATE",
            "ROLE",
            "EXPIRES",
            "RESIDUAL TIME",
            "CERTIFICATE AUTHORITY",
            "KEY",
            "SANS",
        ],
        wide,
        &["SUBJECT", "SERIAL", "KEY TYPE", "USAGES", "SHA256"],
    );
    let mut cas = Table::new(
        &[
            "CERTIFICATE AUTHORITY",
            "ROLE",
            "EXPIRES",
            "RESIDUAL TIME",
            "KEY",
        ],
        wide,
        &["SUBJECT", "SERIAL", "KEY TYPE", "SHA256"],
    );
    for (i, e) in inv.certificates.iter().enumerate() {
        let key = match e.key {
            Some(k) => short(&inv.keys[k].location.path, root),
            None => "-".into(),
        };
        let expires = kubeadm_date(e.info.not_after);
        let resid = residual(&e.info, inv.now);
        let usages = e
            .info
            .key_usage
            .iter()
            .chain(&e.info.ext_key_usage)
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        let sha = e.info.sha256[..16].to_string();
        if e.info.is_ca || e.role.is_ca() {
            cas.row(
                vec![
                    short_loc(inv, i, root),
                    e.role.to_string(),
                    expires,
                    resid,
                    key,
                ],
                vec![
                    e.info.subject.clone(),
                    e.info.serial.clone(),
                    e.info.key.to_string(),
                    sha,
                ],
            );
        } else {
            let ca = e.signed_by.map_or("-".into(), |s| short_loc(inv, s, root));
            let sans = e.info.sans.all().collect::<Vec<_>>().join(",");
            leaves.row(
                vec![
                    short_loc(inv, i, root),
                    e.role.to_string(),
                    expires,
                    resid,
                    ca,
                    key,
                    sans,
                ],
                vec![
                    e.info.subject.clone(),
                    e.info.serial.clone(),
                    e.info.key.to_string(),
                    usages,
                    sha,
                ],
            );
        }
    }
    leaves.write(out)?;
    if !cas.rows.is_empty() {
        writeln!(out)?;
        cas.write(out)?;
    }
    if !inv.kubeconfigs.is_empty() {
        writeln!(out)?;
        let mut t = Table::new(
            &[
                "KUBECONFIG",
                "SERVER",
                "USER",
                "CLIENT CERTIFICATE",
                "EXPIRES",
                "RESIDUAL TIME",
            ],
            false,
            &[],
        );
        for kc in &inv.kubeconfigs {
            for (u, (cert, _)) in kc.config.users.iter().zip(&kc.users) {
                let (src, exp, res) = match cert {
                    Some(i) => {
                        let e = &inv.certificates[*i];
                        let src = if e.location.embedded.is_some() {
                            "embedded".into()
                        } else {
                            short(&e.location.path, root)
                        };
                        (
                            src,
                            kubeadm_date(e.info.not_after),
                            residual(&e.info, inv.now),
                        )
                    }
                    None => ("-".into(), "-".into(), "-".into()),
                };
                let server = kc.config.server.clone().unwrap_or_else(|| "-".into());
                t.row(
                    vec![short(&kc.path, root), server, u.name.clone(), src, exp, res],
                    vec![],
                );
            }
        }
        t.write(out)?;
    }
    for e in endpoints {
        writeln!(out)?;
        let (trust, detail) = trust_words(&e.trust);
        writeln!(
            out,
            "ENDPOINT {}: {trust}{}",
            e.url,
            detail.map(|d| format!(" ({d})")).unwrap_or_default()
        )?;
        if let Some(h) = &e.handshake_error {
            writeln!(out, "  handshake: {h}")?;
        }
        let mut t = Table::new(
            &["#", "SUBJECT", "ISSUER", "EXPIRES", "RESIDUAL TIME", "SANS"],
            wide,
            &["SERIAL", "KEY TYPE", "SHA256"],
        );
        for (i, info) in e.chain.iter().enumerate() {
            t.row(
                vec![
                    i.to_string(),
                    info.subject.clone(),
                    info.issuer.clone(),
                    kubeadm_date(info.not_after),
                    residual(info, inv.now),
                    info.sans.all().collect::<Vec<_>>().join(","),
                ],
                vec![
                    info.serial.clone(),
                    info.key.to_string(),
                    info.sha256[..16].to_string(),
                ],
            );
        }
        t.write(out)?;
    }
    if !inv.findings.is_empty() {
        writeln!(out)?;
        let mut t = Table::new(&["SEVERITY", "FINDING", "PATH", "MESSAGE"], false, &[]);
        let mut sorted: Vec<_> = inv.findings.iter().collect();
        sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
        for f in sorted {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            t.row(
                vec![
                    sev.into(),
                    f.code.into(),
                    short(Path::new(&f.path), root),
                    f.message.clone(),
                ],
                vec![],
            );
        }
        t.write(out)?;
    }
    Ok(())
}

/// A left-aligned text table, columns separated by three spaces like kubeadm's.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    wide: bool,
}

impl Table {
    fn new(cols: &[&str], wide: bool, wide_cols: &[&str]) -> Table {
        let mut header: Vec<String> = cols.iter().map(|s| s.to_string()).collect();
        if wide {
            header.extend(wide_cols.iter().map(|s| s.to_string()));
        }
        Table {
            header,
            rows: Vec::new(),
            wide,
        }
    }

    fn row(&mut self, mut cells: Vec<String>, wide_cells: Vec<String>) {
        if self.wide {
            cells.extend(wide_cells);
        }
        self.rows.push(cells);
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let last = r.len().saturating_sub(1);
            let mut line = String::new();
            for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
                line.push_str(cell);
                if i < last {
                    line.push_str(&" ".repeat(w - cell.chars().count() + 3));
                }
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}
