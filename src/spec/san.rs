//! Subject alternative names as values, and SAN edits as exact set arithmetic.
//!
//! A SAN argument is classified the way cfssl classifies `hosts` (csr/csr.go: IP, then email,
//! then URI, then DNS), so the same string means the same thing to both tools. IPs are
//! normalised (`0:0:0:0:0:0:0:1` is `::1`), DNS names lower-cased and checked. An IP is never
//! a DNS name (kubespray#4013 shipped that bug).

use std::fmt;
use std::net::IpAddr;

use crate::pki::cert::Sans;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    Dns(String),
    Email(String),
    Ip(IpAddr),
    Uri(String),
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(d) => write!(f, "DNS:{d}"),
            San::Email(e) => write!(f, "email:{e}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
            San::Uri(u) => write!(f, "URI:{u}"),
        }
    }
}

impl San {
    /// Classifies one argument: IP, then email, then URI, then DNS name. A `DNS:`/`IP:` prefix
    /// (as openssl prints them) forces the type.
    pub fn parse(arg: &str) -> Result<San, String> {
        let text = arg.trim();
        if let Some(rest) = text
            .strip_prefix("IP:")
            .or_else(|| text.strip_prefix("IP Address:"))
        {
            return parse_ip(rest)
                .map(San::Ip)
                .ok_or_else(|| format!("expected an IP address after `IP:`, found `{rest}`"));
        }
        if let Some(rest) = text.strip_prefix("DNS:") {
            return parse_dns(rest);
        }
        if let Some(ip) = parse_ip(text) {
            return Ok(San::Ip(ip));
        }
        if is_email(text) {
            return Ok(San::Email(text.to_string()));
        }
        if is_uri(text) {
            return Ok(San::Uri(text.to_string()));
        }
        parse_dns(text)
    }

    /// The string cfssl's `hosts` holds for this SAN.
    pub fn host(&self) -> String {
        match self {
            San::Dns(s) | San::Email(s) | San::Uri(s) => s.clone(),
            San::Ip(ip) => ip.to_string(),
        }
    }

    /// A name a TLS client could dial to be matched against this SAN (wildcards get a label).
    pub fn dial_name(&self) -> Option<String> {
        match self {
            San::Dns(d) => Some(
                d.strip_prefix("*.")
                    .map_or(d.clone(), |rest| format!("wildcard-check.{rest}")),
            ),
            San::Ip(ip) => Some(ip.to_string()),
            _ => None,
        }
    }
}

fn parse_ip(text: &str) -> Option<IpAddr> {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    t.parse::<IpAddr>().ok().map(|ip| match ip {
        // ::ffff:a.b.c.d is the IPv4 address for every TLS client.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !text.contains(char::is_whitespace)
        && !local.contains(':')
}

fn is_uri(text: &str) -> bool {
    // Go's url.Parse with a scheme and a host, as cfssl requires.
    match text.split_once("://") {
        Some((scheme, rest)) => {
            let scheme_ok = scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            scheme_ok && !host.is_empty()
        }
        None => false,
    }
}

fn parse_dns(text: &str) -> Result<San, String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let bad = |why: &str| {
        Err(format!(
            "expected an IP address, email, URI or DNS name, found `{text}` ({why})"
        ))
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 253 {
        return bad("longer than 253 characters");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
    {
        return bad("digits and dots only, but not a valid IP address");
    }
    for (i, label) in labels.iter().enumerate() {
        if *label == "*" && i == 0 && labels.len() > 1 {
            continue;
        }
        if label.is_empty() || label.len() > 63 {
            return bad("a label is empty or longer than 63 characters");
        }
        if !label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad("only letters, digits, '-' and '_' may appear in a DNS label");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a DNS label cannot start or end with '-'");
        }
    }
    Ok(San::Dns(name))
}

/// A certificate's SANs as one ordered list: DNS, email, IP, URI (the order Go writes them).
/// Fails on SAN types that cannot be written back (otherName, directoryName …).
pub fn from_cert(sans: &Sans) -> Result<Vec<San>, String> {
    if !sans.other.is_empty() {
        return Err(format!(
            "expected only DNS, IP, email and URI SANs, found {}",
            sans.other.join(", ")
        ));
    }
    let mut out = Vec::new();
    out.extend(sans.dns.iter().map(|d| San::Dns(d.to_ascii_lowercase())));
    out.extend(sans.email.iter().map(|e| San::Email(e.clone())));
    for ip in &sans.ip {
        out.push(San::Ip(
            parse_ip(ip).ok_or_else(|| format!("unreadable IP SAN {ip}"))?,
        ));
    }
    out.extend(sans.uri.iter().map(|u| San::Uri(u.clone())));
    dedup(&mut out);
    Ok(out)
}

fn dedup(list: &mut Vec<San>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|s| seen.insert(s.clone()));
}

/// `--add-san` and `--drop-san`, parsed.
#[derive(Debug, Clone, Default)]
pub struct SanEdit {
    pub add: Vec<San>,
    pub drop: Vec<San>,
}

impl SanEdit {
    pub fn parse(add: &[String], drop: &[String]) -> Result<SanEdit, String> {
        let parse_all = |v: &[String]| {
            v.iter()
                .map(|s| San::parse(s))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut edit = SanEdit {
            add: parse_all(add)?,
            drop: parse_all(drop)?,
        };
        dedup(&mut edit.add);
        dedup(&mut edit.drop);
        if let Some(both) = edit.add.iter().find(|s| edit.drop.contains(s)) {
            return Err(format!("`{both}` is both added and dropped"));
        }
        Ok(edit)
    }

    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.drop.is_empty()
    }
}

/// The result of an edit: the new list and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditOutcome {
    pub sans: Vec<San>,
    pub added: Vec<San>,
    pub removed: Vec<San>,
    /// Asked to be added but already present: a no-op worth saying.
    pub already_present: Vec<San>,
}

/// Applies `edit` to `current`. Dropping a SAN that is not there is an error listing those that
/// are; removing the last SAN of a serving certificate is an error.
pub fn apply(current: &[San], edit: &SanEdit, serving: bool) -> Result<EditOutcome, String> {
    let missing: Vec<String> = edit
        .drop
        .iter()
        .filter(|s| !current.contains(s))
        .map(|s| s.to_string())
        .collect();
    if !missing.is_empty() {
        let present: Vec<String> = current.iter().map(|s| s.to_string()).collect();
        return Err(format!(
            "cannot drop {}: expected one of the certificate's SANs, which are {}",
            missing.join(", "),
            if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            }
        ));
    }
    let mut sans: Vec<San> = current
        .iter()
        .filter(|s| !edit.drop.contains(s))
        .cloned()
        .collect();
    let removed = edit.drop.clone();
    let mut added = Vec::new();
    let mut already_present = Vec::new();
    for s in &edit.add {
        if current.contains(s) {
            already_present.push(s.clone());
        } else {
            sans.push(s.clone());
            added.push(s.clone());
        }
    }
    // Keep Go's grouping (DNS, email, IP, URI), each group in its existing order.
    sans.sort_by_key(|s| match s {
        San::Dns(_) => 0,
        San::Email(_) => 1,
        San::Ip(_) => 2,
        San::Uri(_) => 3,
    });
    if serving && sans.is_empty() && !current.is_empty() {
        return Err("expected a serving certificate to keep at least one SAN, found none left after the edit".into());
    }
    Ok(EditOutcome {
        sans,
        added,
        removed,
        already_present,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> San {
        San::parse(s).unwrap()
    }

    #[test]
    fn classifies_like_cfssl() {
        assert_eq!(p("10.0.0.1"), San::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!(p("0:0:0:0:0:0:0:1"), p("::1"));
        assert_eq!(p("::ffff:10.0.0.1"), p("10.0.0.1"));
        assert_eq!(p("[fe80::1]"), San::Ip("fe80::1".parse().unwrap()));
        assert_eq!(p("ops@example.com"), San::Email("ops@example.com".into()));
        assert_eq!(
            p("spiffe://cluster.local/ns/x"),
            San::Uri("spiffe://cluster.local/ns/x".into())
        );
        assert_eq!(
            p("Kubernetes.Default"),
            San::Dns("kubernetes.default".into())
        );
        assert_eq!(
            p("*.apps.example.com"),
            San::Dns("*.apps.example.com".into())
        );
        assert_eq!(p("IP:127.0.0.1"), p("127.0.0.1"));
        assert_eq!(p("DNS:Master1"), San::Dns("master1".into()));
        // A dotted quad that is not an IP must not silently become a DNS name.
        assert!(San::parse("10.0.0.300").is_err());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "a b",
            "-lead.example",
            "x..y",
            "*",
            "a.*.b",
            "IP:not-an-ip",
            &"a".repeat(64),
        ] {
            assert!(San::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn set_arithmetic() {
        let current = vec![p("kubernetes"), p("10.96.0.1"), p("172.72.0.96")];
        let edit = SanEdit::parse(
            &["10.21.22.101".into(), "kubernetes".into()],
            &["172.72.0.96".into()],
        )
        .unwrap();
        let out = apply(&current, &edit, true).unwrap();
        assert_eq!(
            out.sans,
            vec![p("kubernetes"), p("10.96.0.1"), p("10.21.22.101")]
        );
        assert_eq!(out.added, vec![p("10.21.22.101")]);
        assert_eq!(out.removed, vec![p("172.72.0.96")]);
        assert_eq!(out.already_present, vec![p("kubernetes")]);
    }

    #[test]
    fn dropping_an_absent_san_lists_the_present_ones() {
        let current = vec![p("kubernetes"), p("10.96.0.1")];
        let edit = SanEdit::parse(&[], &["10.0.0.9".into()]).unwrap();
        let err = apply(&current, &edit, true).unwrap_err();
        assert!(
            err.contains("IP:10.0.0.9") && err.contains("DNS:kubernetes, IP:10.96.0.1"),
            "{err}"
        );
    }

    #[test]
    fn serving_certificate_keeps_a_san() {
        let current = vec![p("10.96.0.1")];
        let edit = SanEdit::parse(&[], &["10.96.0.1".into()]).unwrap();
        assert!(apply(&current, &edit, true).is_err());
        assert!(apply(&current, &edit, false).unwrap().sans.is_empty());
        // A serving certificate that never had a SAN (cfssl's admin.pem) stays as it is.
        assert!(apply(&[], &SanEdit::default(), true)
            .unwrap()
            .sans
            .is_empty());
        assert!(SanEdit::parse(&["a".into()], &["A".into()]).is_err());
    }
}
