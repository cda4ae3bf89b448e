//! Rendering an inventory: kubeadm-like tables, or the JSON schema documented in README.md
//! (`certs.inspect/v1`; fields are only ever added to it).

use std::io::{self, Write};

mod preflight;
mod table;
#[cfg(test)]
mod tests;

pub use preflight::preflight;

pub(crate) use table::{wrap, Col, Fit, Table};

use super::args::Output;
use super::config::InspectConfig;
use crate::duration::{kubeadm_date, short_human};
use crate::pki::cert::CertInfo;
use crate::pki::inventory::Inventory;
use crate::pki::Severity;
use crate::sys::tls::Trust;

/// A live endpoint's served chain, leaf first.
pub struct Endpoint {
    pub url: String,
    pub trust: Trust,
    pub handshake_error: Option<String>,
    pub chain: Vec<CertInfo>,
}

/// `inv` and the probed `endpoints` as `c.output` says; a table fitted to `width` columns (none:
/// every column at full width).
pub fn inspect(
    out: &mut dyn Write,
    inv: &Inventory,
    endpoints: &[Endpoint],
    c: &InspectConfig,
    width: Option<usize>,
) -> io::Result<()> {
    match c.output {
        Output::Json => {
            super::inspect_json::write(out, inv, endpoints)?;
            writeln!(out)
        }
        Output::Table | Output::Wide => tables(out, inv, endpoints, c, width),
        Output::Kubeadm | Output::KubeadmJson | Output::Prometheus => {
            super::inspect::write_report(out, inv, c)
        }
    }
}

pub(super) fn trust_words(t: &Trust) -> (&'static str, Option<String>) {
    match t {
        Trust::Verified => ("verified", None),
        Trust::NameNotCovered { name, detail } => {
            ("name-not-covered", Some(format!("{name}: {detail}")))
        }
        Trust::Untrusted { reason } => ("untrusted", Some(reason.clone())),
        Trust::NotChecked => ("not-checked", None),
    }
}

/// A certificate's location as tables show it: its path as JSON has it (the host's path, under
/// `--root` when one is given), `#N` for the N-th certificate of a file, or `#users[NAME]` for
/// one a kubeconfig embeds.
fn table_loc(inv: &Inventory, i: usize) -> String {
    let loc = &inv.certificates[i].location;
    let mut s = loc.path.display().to_string();
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
    width: Option<usize>,
) -> io::Result<()> {
    let wide = c.output == Output::Wide;
    // `-o wide` is every column at full width; the default table fits the terminal.
    let width = if wide { None } else { width };
    let expires = || Col::drop("EXPIRES", Fit::Fixed, 3);
    let mut leaves = Table::new(
        vec![
            Col::keep("CERTIFICATE", Fit::Path),
            Col::drop("ROLE", Fit::Fixed, 4),
            expires(),
            Col::keep("RESIDUAL TIME", Fit::Fixed),
            Col::drop("CERTIFICATE AUTHORITY", Fit::Path, 1),
            Col::drop("KEY", Fit::Path, 0),
            Col::drop("SANS", Fit::Wrap, 2),
        ],
        wide,
        &["SUBJECT", "SERIAL", "KEY TYPE", "USAGES", "SHA256"],
    );
    let mut cas = Table::new(
        vec![
            Col::keep("CERTIFICATE AUTHORITY", Fit::Path),
            Col::drop("ROLE", Fit::Fixed, 4),
            expires(),
            Col::keep("RESIDUAL TIME", Fit::Fixed),
            Col::drop("KEY", Fit::Path, 0),
        ],
        wide,
        &["SUBJECT", "SERIAL", "KEY TYPE", "SHA256"],
    );
    for (i, e) in inv.certificates.iter().enumerate() {
        let key = match e.key {
            Some(k) => inv.keys[k].location.path.display().to_string(),
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
                vec![table_loc(inv, i), e.role.to_string(), expires, resid, key],
                vec![
                    e.info.subject.clone(),
                    e.info.serial.clone(),
                    e.info.key.to_string(),
                    sha,
                ],
            );
        } else {
            let ca = e.signed_by.map_or("-".into(), |s| table_loc(inv, s));
            let sans = e.info.sans.all().collect::<Vec<_>>().join(",");
            leaves.row(
                vec![
                    table_loc(inv, i),
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
    // Sections are separated by one empty line; an empty table is not printed at all (`inspect
    // URL` alone has no certificate files, so no header without rows).
    let mut sections = Sections::default();
    sections.table(out, &leaves, width)?;
    sections.table(out, &cas, width)?;
    let mut t = Table::new(
        vec![
            Col::keep("KUBECONFIG", Fit::Path),
            Col::drop("SERVER", Fit::Fixed, 3),
            Col::drop("USER", Fit::Cut, 1),
            Col::drop("CLIENT CERTIFICATE", Fit::Path, 0),
            Col::drop("EXPIRES", Fit::Fixed, 2),
            Col::keep("RESIDUAL TIME", Fit::Fixed),
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
                        e.location.path.display().to_string()
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
                vec![
                    kc.path.display().to_string(),
                    server,
                    u.name.clone(),
                    src,
                    exp,
                    res,
                ],
                vec![],
            );
        }
    }
    sections.table(out, &t, width)?;
    for e in endpoints {
        sections.start(out)?;
        let (trust, detail) = trust_words(&e.trust);
        let head = format!(
            "ENDPOINT {}: {trust}{}",
            e.url,
            detail.map(|d| format!(" ({d})")).unwrap_or_default()
        );
        for line in wrap(&head, width, 2) {
            writeln!(out, "{line}")?;
        }
        if let Some(h) = &e.handshake_error {
            for line in wrap(&format!("  handshake: {h}"), width, 4) {
                writeln!(out, "{line}")?;
            }
        }
        let mut t = Table::new(
            vec![
                Col::keep("#", Fit::Fixed),
                Col::keep("SUBJECT", Fit::Cut),
                Col::drop("ISSUER", Fit::Cut, 1),
                Col::drop("EXPIRES", Fit::Fixed, 0),
                Col::keep("RESIDUAL TIME", Fit::Fixed),
                Col::drop("SANS", Fit::Wrap, 2),
            ],
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
        if !t.rows.is_empty() {
            t.write(out, width)?;
        }
    }
    let mut t = Table::new(
        vec![
            Col::keep("SEVERITY", Fit::Fixed),
            Col::keep("FINDING", Fit::Fixed),
            Col::keep("PATH", Fit::Path).min(24),
            Col::keep("MESSAGE", Fit::Wrap).min(40).below(),
        ],
        false,
        &[],
    );
    let mut sorted: Vec<_> = inv.findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted {
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        t.row(
            vec![sev.into(), f.code.into(), f.path.clone(), f.message.clone()],
            vec![],
        );
    }
    sections.table(out, &t, width)
}

/// Output sections, one empty line between two.
#[derive(Default)]
struct Sections {
    started: bool,
}

impl Sections {
    fn start(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if std::mem::replace(&mut self.started, true) {
            writeln!(out)?;
        }
        Ok(())
    }

    /// A table with rows, as a section; nothing for an empty one.
    fn table(&mut self, out: &mut dyn Write, t: &Table, width: Option<usize>) -> io::Result<()> {
        if t.rows.is_empty() {
            return Ok(());
        }
        self.start(out)?;
        t.write(out, width)
    }
}
