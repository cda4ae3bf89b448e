//! `kubeadm certs check-expiration`, from a scan instead of kubeadm's own reads.
//!
//! What kubeadm prints (cmd/kubeadm/app/cmd/certs.go and its renewal manager):
//!
//! - the certificates it manages, sorted by name: the PKI files under its `certificatesDir`
//!   (`apiserver`, `apiserver-kubelet-client`, `front-proxy-client`, and with a local (stacked)
//!   etcd `apiserver-etcd-client`, `etcd-server`, `etcd-peer`, `etcd-healthcheck-client`) and the
//!   client certificates embedded in `admin.conf`, `super-admin.conf`, `controller-manager.conf`
//!   and `scheduler.conf`; then its CAs (`ca`, `front-proxy-ca`, and `etcd-ca` with a local
//!   etcd). An expected file that is absent is a `!MISSING! <name>` row.
//! - `EXPIRES` as Go's `Jan 02, 2006 15:04 MST` (UTC), `RESIDUAL TIME` as apimachinery's
//!   `duration.ShortHumanDuration` of the residual time truncated to whole seconds,
//!   `EXTERNALLY MANAGED` `yes` when the CA's key file is absent.
//! - both tables through Go's `text/tabwriter` set up as `NewWriter(out, 10, 4, 3, ' ', 0)`
//!   (so `%-8v` pads `no` to eight characters and a missing row pads its empty cells).
//! - with `-o json`, the `CertificateExpirationInfo` object of `output.kubeadm.k8s.io/v1alpha3`
//!   (`residualTime` in seconds, `caName` omitted for CAs, `expirationDate: null` when missing),
//!   indented by four spaces as kubectl's JSON printer does.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::duration::{kubeadm_date, short_human};
use crate::pki::inventory::Inventory;

/// Where kubeadm would look: its `kubernetesDir` (kubeconfigs) and `certificatesDir`, and
/// whether it tracks etcd's certificates (a local, stacked etcd) or not (external etcd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub kubernetes_dir: PathBuf,
    pub cert_dir: PathBuf,
    pub local_etcd: bool,
}

/// kubeadm's PKI certificates and kubeconfigs: name, where it is read, the CA that signs it.
enum Source {
    /// `<certificatesDir>/<base>.crt`
    Pki(&'static str),
    /// `<kubernetesDir>/<name>`, the current user's client certificate
    Kubeconfig,
}

const CERTIFICATES: &[(&str, Source, &str)] = &[
    ("admin.conf", Source::Kubeconfig, "ca"),
    ("apiserver", Source::Pki("apiserver"), "ca"),
    (
        "apiserver-etcd-client",
        Source::Pki("apiserver-etcd-client"),
        "etcd-ca",
    ),
    (
        "apiserver-kubelet-client",
        Source::Pki("apiserver-kubelet-client"),
        "ca",
    ),
    ("controller-manager.conf", Source::Kubeconfig, "ca"),
    (
        "etcd-healthcheck-client",
        Source::Pki("etcd/healthcheck-client"),
        "etcd-ca",
    ),
    ("etcd-peer", Source::Pki("etcd/peer"), "etcd-ca"),
    ("etcd-server", Source::Pki("etcd/server"), "etcd-ca"),
    (
        "front-proxy-client",
        Source::Pki("front-proxy-client"),
        "front-proxy-ca",
    ),
    ("scheduler.conf", Source::Kubeconfig, "ca"),
    ("super-admin.conf", Source::Kubeconfig, "ca"),
];

/// kubeadm's CAs: name and base name under `certificatesDir`.
const AUTHORITIES: &[(&str, &str)] = &[
    ("ca", "ca"),
    ("etcd-ca", "etcd/ca"),
    ("front-proxy-ca", "front-proxy-ca"),
];

/// The `certificatesDir` names kubeadm gives its files, to recognise one among given paths.
const PKI_FILES: &[&str] = &[
    "ca.crt",
    "apiserver.crt",
    "apiserver-kubelet-client.crt",
    "apiserver-etcd-client.crt",
    "front-proxy-ca.crt",
    "front-proxy-client.crt",
];

impl Layout {
    /// kubeadm's directories as the scan found them: `/etc/kubernetes/pki` under `root`, else
    /// kubespray's `/etc/kubernetes/ssl` (kubeadm's `certificatesDir` there), else the
    /// directory of the first scanned file with a kubeadm PKI name (a backup given as a PATH).
    /// `kubernetesDir` is its parent. etcd counts as local when anything was found in
    /// `<certificatesDir>/etcd/`; the caller may know more (a static pod manifest for etcd).
    pub fn find(inv: &Inventory, root: &Path) -> Layout {
        let files = || {
            inv.certificates
                .iter()
                .filter(|c| c.location.embedded.is_none())
                .map(|c| c.location.path.as_path())
        };
        let standard = ["/etc/kubernetes/pki", "/etc/kubernetes/ssl"]
            .iter()
            .map(|d| crate::sys::fs::under_root(root, Path::new(d)))
            .find(|dir| files().any(|p| p.parent() == Some(dir.as_path())));
        let cert_dir = standard
            .or_else(|| {
                files()
                    .find(|p| {
                        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        let dir = p.parent().and_then(|d| d.file_name());
                        PKI_FILES.contains(&name) && dir.is_none_or(|d| d != "etcd")
                    })
                    .and_then(Path::parent)
                    .map(Path::to_path_buf)
            })
            .unwrap_or_else(|| crate::sys::fs::under_root(root, Path::new("/etc/kubernetes/pki")));
        let kubernetes_dir = cert_dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| cert_dir.clone());
        let etcd_dir = cert_dir.join("etcd");
        let local_etcd = files()
            .chain(
                inv.keys
                    .iter()
                    .filter(|k| k.location.embedded.is_none())
                    .map(|k| k.location.path.as_path()),
            )
            .any(|p| p.parent() == Some(etcd_dir.as_path()));
        Layout {
            kubernetes_dir,
            cert_dir,
            local_etcd,
        }
    }
}

/// One row of either table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// kubeadm's name: `apiserver`, `admin.conf`, `etcd-ca` …
    pub name: &'static str,
    /// The CA that signs it (`ca`, `etcd-ca`, `front-proxy-ca`); `None` for the CAs themselves.
    pub ca_name: Option<&'static str>,
    /// Its notAfter (Unix seconds); `None` when the file is missing.
    pub not_after: Option<i64>,
    /// The CA's key file is absent (kubeadm cannot renew it).
    pub externally_managed: bool,
}

/// kubeadm's `CertificateExpirationInfo`, judged at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirationInfo {
    pub now: i64,
    pub certificates: Vec<Entry>,
    pub authorities: Vec<Entry>,
}

/// What kubeadm would report on this node. `exists` says whether a file is there (kubeadm
/// decides "externally managed" by the CA key file alone).
pub fn expiration(
    inv: &Inventory,
    layout: &Layout,
    exists: &dyn Fn(&Path) -> bool,
) -> ExpirationInfo {
    let tracked = |ca: &str| layout.local_etcd || ca != "etcd-ca";
    let key_absent = |ca: &str| !exists(&layout.cert_dir.join(format!("{}.key", ca_base(ca))));
    let pki_cert = |base: &str| {
        let path = layout.cert_dir.join(format!("{base}.crt"));
        inv.certificates
            .iter()
            .find(|c| {
                c.location.embedded.is_none() && c.location.index == 0 && c.location.path == path
            })
            .map(|c| c.info.not_after)
    };
    let certificates = CERTIFICATES
        .iter()
        .filter(|(_, _, ca)| tracked(ca))
        .map(|(name, source, ca)| {
            let not_after = match source {
                Source::Pki(base) => pki_cert(base),
                Source::Kubeconfig => kubeconfig_cert(inv, &layout.kubernetes_dir.join(name)),
            };
            Entry {
                name,
                ca_name: Some(ca),
                not_after,
                externally_managed: not_after.is_some() && key_absent(ca),
            }
        })
        .collect();
    let authorities = AUTHORITIES
        .iter()
        .filter(|(name, _)| tracked(name))
        .map(|(name, base)| {
            let not_after = pki_cert(base);
            Entry {
                name,
                ca_name: None,
                not_after,
                externally_managed: not_after.is_some() && key_absent(name),
            }
        })
        .collect();
    ExpirationInfo {
        now: inv.now,
        certificates,
        authorities,
    }
}

/// A CA's base name under `certificatesDir`: `etcd-ca` is `etcd/ca`.
fn ca_base(ca: &str) -> &str {
    AUTHORITIES
        .iter()
        .find(|(name, _)| *name == ca)
        .map_or(ca, |(_, base)| *base)
}

/// The client certificate of the kubeconfig at `path`: its current context's user (or its only
/// user), embedded or referenced.
fn kubeconfig_cert(inv: &Inventory, path: &Path) -> Option<i64> {
    let kc = inv.kubeconfigs.iter().find(|k| k.path == path)?;
    let users = &kc.config.users;
    let user = match &kc.config.current_user {
        Some(name) => users.iter().position(|u| &u.name == name)?,
        None if users.len() == 1 => 0,
        None => return None,
    };
    let (cert, _) = kc.users.get(user)?;
    cert.map(|i| inv.certificates[i].info.not_after)
}

/// Go's `time.Time.Sub` saturates at ±2^63 ns; kubeadm then keeps whole seconds.
fn residual_seconds(not_after: i64, now: i64) -> i64 {
    const LIMIT: i64 = i64::MAX / 1_000_000_000;
    not_after.saturating_sub(now).clamp(-LIMIT, LIMIT)
}

/// The two tables, as kubeadm's text printer writes them.
pub fn write_table(out: &mut dyn Write, info: &ExpirationInfo) -> io::Result<()> {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut text = String::from(
        "CERTIFICATE\tEXPIRES\tRESIDUAL TIME\tCERTIFICATE AUTHORITY\tEXTERNALLY MANAGED\n",
    );
    for e in &info.certificates {
        match e.not_after {
            None => text.push_str(&format!("!MISSING! {}\t\t\t\t\n", e.name)),
            Some(t) => text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{:<8}\n",
                e.name,
                kubeadm_date(t),
                short_human(residual_seconds(t, info.now)),
                e.ca_name.unwrap_or(""),
                yes_no(e.externally_managed),
            )),
        }
    }
    text.push('\n');
    text.push_str("CERTIFICATE AUTHORITY\tEXPIRES\tRESIDUAL TIME\tEXTERNALLY MANAGED\n");
    for e in &info.authorities {
        match e.not_after {
            None => text.push_str(&format!("!MISSING! {}\t\t\t\n", e.name)),
            Some(t) => text.push_str(&format!(
                "{}\t{}\t{}\t{:<8}\n",
                e.name,
                kubeadm_date(t),
                short_human(residual_seconds(t, info.now)),
                yes_no(e.externally_managed),
            )),
        }
    }
    out.write_all(tabwrite(&text).as_bytes())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InfoJson<'a> {
    kind: &'static str,
    api_version: &'static str,
    certificates: Vec<CertJson<'a>>,
    certificate_authorities: Vec<CertJson<'a>>,
}

/// `output.kubeadm.k8s.io/v1alpha3` `Certificate`, fields in Go's declaration order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CertJson<'a> {
    name: &'a str,
    expiration_date: Option<String>,
    residual_time: i64,
    externally_managed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    ca_name: Option<&'a str>,
    missing: bool,
}

fn cert_json(e: &Entry, now: i64) -> CertJson<'_> {
    CertJson {
        name: e.name,
        expiration_date: e.not_after.map(crate::duration::rfc3339),
        residual_time: e.not_after.map_or(0, |t| residual_seconds(t, now)),
        externally_managed: e.externally_managed,
        ca_name: e.ca_name.filter(|_| e.not_after.is_some()),
        missing: e.not_after.is_none(),
    }
}

/// The `CertificateExpirationInfo` document, as `kubeadm certs check-expiration -o json`.
pub fn write_json(out: &mut dyn Write, info: &ExpirationInfo) -> io::Result<()> {
    let doc = InfoJson {
        kind: "CertificateExpirationInfo",
        api_version: "output.kubeadm.k8s.io/v1alpha3",
        certificates: info
            .certificates
            .iter()
            .map(|e| cert_json(e, info.now))
            .collect(),
        certificate_authorities: info
            .authorities
            .iter()
            .map(|e| cert_json(e, info.now))
            .collect(),
    };
    let mut ser = serde_json::Serializer::with_formatter(
        &mut *out,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    doc.serialize(&mut ser)?;
    writeln!(out)
}

/// Go's `text/tabwriter` as kubeadm sets it up (`minwidth` 10, `padding` 3, padded with
/// spaces, no flags): cells end at a tab, a line's last cell is not part of any column, and a
/// column is as wide as the widest cell of the run of consecutive lines that have it.
fn tabwrite(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text
        .split_terminator('\n')
        .map(|l| l.split('\t').collect())
        .collect();
    let mut out = String::with_capacity(text.len() * 2);
    format_block(&lines, &mut Vec::new(), 0, lines.len(), &mut out);
    out
}

const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// `(*Writer).format`: lays out column `widths.len()` for the lines in `line0..line1`.
fn format_block(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    mut line0: usize,
    line1: usize,
    out: &mut String,
) {
    let column = widths.len();
    let has_column = |line: &Vec<&str>| column + 1 < line.len();
    let mut this = line0;
    while this < line1 {
        if !has_column(&lines[this]) {
            this += 1;
            continue;
        }
        write_lines(lines, widths, line0, this, out);
        line0 = this;
        let mut width = MIN_WIDTH;
        while this < line1 && has_column(&lines[this]) {
            width = width.max(lines[this][column].chars().count() + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(lines, widths, line0, this, out);
        widths.pop();
        line0 = this;
        // Go's loop steps past the line that ended the block: it does not have the column.
        this += 1;
    }
    write_lines(lines, widths, line0, line1, out);
}

fn write_lines(
    lines: &[Vec<&str>],
    widths: &[usize],
    line0: usize,
    line1: usize,
    out: &mut String,
) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&w) = widths.get(j) {
                let pad = w.saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RESIDUAL TIME is [`short_human`] (apimachinery's `ShortHumanDuration`, tested against
    /// its own table in crate::duration) of whole seconds, as kubeadm keeps them.
    #[test]
    fn residual_time_is_whole_seconds() {
        // 1.5 s in the past is -1 s, "0s"; two seconds is "<invalid>"
        assert_eq!(short_human(residual_seconds(99, 100)), "0s");
        assert_eq!(short_human(residual_seconds(98, 100)), "<invalid>");
        // Go's Time.Sub saturates near 292 years; kubeadm prints what is left of it
        assert_eq!(residual_seconds(i64::MAX, 0), 9_223_372_036);
        assert_eq!(short_human(residual_seconds(i64::MAX, 0)), "292y");
    }

    #[test]
    fn date_is_gos_reference_layout() {
        // 2034-12-31T00:00:00Z, 2006-01-02T15:04:05Z
        assert_eq!(kubeadm_date(2_051_136_000), "Dec 31, 2034 00:00 UTC");
        assert_eq!(kubeadm_date(1_136_214_245), "Jan 02, 2006 15:04 UTC");
    }

    /// Go's text/tabwriter with kubeadm's parameters gives exactly this (checked against Go
    /// 1.19): a column is as wide as its block of consecutive lines needs, the empty line ends
    /// every block, a line's last cell is not padded, an empty cell is.
    #[test]
    fn tabwriter_blocks_and_padding() {
        let text = "a\tb\tc\nlonger cell\tx\tlast\n\nh\t\tend\n";
        let want = concat!(
            "a             b         c\n",
            "longer cell   x         last\n",
            "\n",
            "h                   end\n",
        );
        assert_eq!(tabwrite(text), want);
    }
}
