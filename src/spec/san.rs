//! Subject alternative names as values, and SAN edits as exact set arithmetic.
//!
//! A SAN argument is classified the way cfssl classifies `hosts` (csr/csr.go: IP, then email,
//! then URI, then DNS), so the same string means the same thing to both tools. IPs are
//! normalised (`0:0:0:0:0:0:0:1` is `::1`), DNS names lower-cased and checked. An IP is never
//! a DNS name (kubespray#4013 shipped that bug).
//!
//! DNS names, emails and URIs are IA5Strings in a certificate (RFC 5280 §4.2.1.6): ASCII only.
//! An internationalised domain name is converted to its A-labels (`bücher.de` is
//! `xn--bcher-kva.de`, UTS #46 through the `idna` crate), in a DNS name, an email's domain or a
//! URI's host; anything else non-ASCII is refused. URIs and emails are checked as Go's x509
//! parser (kube-apiserver's) would: a certificate Go cannot read is never signed.

use std::fmt;
use std::net::IpAddr;

use super::error::{Error, Result};
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
    pub fn parse(arg: &str) -> Result<San> {
        let text = arg.trim();
        if let Some(rest) = text
            .strip_prefix("IP:")
            .or_else(|| text.strip_prefix("IP Address:"))
        {
            return parse_ip(rest)
                .map(San::Ip)
                .ok_or_else(|| Error::IpAfterPrefix(rest.to_string()));
        }
        if let Some(rest) = text.strip_prefix("DNS:") {
            return parse_dns(rest);
        }
        if let Some(ip) = parse_ip(text) {
            return Ok(San::Ip(ip));
        }
        if is_email(text) {
            return parse_email(text).map(San::Email);
        }
        if is_uri(text) {
            return parse_uri(text).map(San::Uri);
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

/// A domain as A-labels: ASCII as it is, an internationalised one converted (UTS #46), a
/// wildcard's first label kept.
fn a_labels(domain: &str) -> Result<String, &'static str> {
    if domain.is_ascii() {
        return Ok(domain.to_string());
    }
    let (wild, rest) = match domain.strip_prefix("*.") {
        Some(rest) => ("*.", rest),
        None => ("", domain),
    };
    idna::domain_to_ascii(rest)
        .map(|a| format!("{wild}{a}"))
        .map_err(|_| "not a valid internationalised domain name")
}

/// An email SAN (rfc822Name): an ASCII local part (dot-atom, as RFC 5321 writes it), `@`, a
/// domain (an internationalised one as A-labels).
fn parse_email(text: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(Error::San {
            expected: "an email address LOCAL@DOMAIN",
            found: text.to_string(),
            why: why.to_string(),
        })
    };
    let Some((local, domain)) = text.split_once('@') else {
        return bad("no `@`");
    };
    if domain.contains('@') {
        return bad("more than one `@`");
    }
    if !local.is_ascii() {
        return bad("its local part must be ASCII: an email SAN is an IA5String, and SMTPUTF8 addresses are not supported");
    }
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if local.is_empty()
        || local.len() > 64
        || local
            .split('.')
            .any(|part| part.is_empty() || !part.chars().all(atext))
    {
        return bad("its local part must be letters, digits, dots and !#$%&'*+-/=?^_`{|}~, at most 64, no empty part between dots");
    }
    let ascii = match a_labels(domain) {
        Ok(a) => a,
        Err(why) => return bad(why),
    };
    match parse_dns(&ascii) {
        Ok(_) if !ascii.starts_with('*') && !ascii.ends_with('.') => {}
        _ => return bad("its domain is not a valid DNS name"),
    }
    Ok(format!("{local}@{ascii}"))
}

/// A URI SAN: ASCII (a non-ASCII host becomes A-labels), only the characters RFC 3986 allows,
/// `%` followed by two hex digits, a host of non-empty labels and a numeric port: what Go's
/// `url.Parse` and x509 parser accept.
fn parse_uri(text: &str) -> Result<String> {
    let bad = |why: &str| {
        Err(Error::San {
            expected: "a URI SCHEME://HOST[:PORT][/PATH]",
            found: text.to_string(),
            why: why.to_string(),
        })
    };
    let Some((scheme, rest)) = text.split_once("://") else {
        return bad("no `://`");
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if hostport.starts_with('[') {
        match hostport.split_once(']') {
            Some((h, p)) => (&hostport[..h.len() + 1], p),
            None => return bad("an IPv6 host without its closing `]`"),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, &hostport[h.len()..][..p.len() + 1]),
            None => (hostport, ""),
        }
    };
    let host = if host.is_ascii() {
        host.to_string()
    } else {
        match a_labels(host) {
            Ok(a) => a,
            Err(why) => return bad(why),
        }
    };
    let uri = format!(
        "{scheme}://{}{host}{port}{tail}",
        userinfo.map(|u| format!("{u}@")).unwrap_or_default()
    );
    if !uri.is_ascii() {
        return bad("a URI SAN is an IA5String, ASCII only: percent-encode the rest (the host is converted to A-labels)");
    }
    if let Some(c) = uri
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(*c)))
    {
        return bad(&format!(
            "{} is not allowed in a URI",
            if c == ' ' {
                "a space".to_string()
            } else {
                format!("{c:?}")
            }
        ));
    }
    let b = uri.as_bytes();
    for (i, _) in uri.match_indices('%') {
        if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return bad("a `%` not followed by two hex digits");
        }
    }
    if !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return bad("a scheme of letters, digits, `+`, `-` and `.`");
    }
    if let Some(p) = port.strip_prefix(':') {
        if p.parse::<u16>().is_err() || !p.chars().all(|c| c.is_ascii_digit()) {
            return bad("a port must be a number from 0 to 65535");
        }
    } else if !port.is_empty() {
        return bad("something after the `]` of an IPv6 host that is not a port");
    }
    if let Some(v6) = host.strip_prefix('[') {
        if v6
            .trim_end_matches(']')
            .parse::<std::net::Ipv6Addr>()
            .is_err()
        {
            return bad("not an IPv6 address in the brackets");
        }
    } else if host.is_empty() {
        return bad("no host");
    } else if host.split('.').any(str::is_empty) {
        return bad("an empty label in the host (a leading, trailing or doubled dot)");
    } else if host.contains(['[', ']', '/', '?', '#', '@']) {
        return bad("a host with characters only a path may have");
    }
    if userinfo.is_some_and(|u| u.contains(['[', ']', '/', '?', '#', '@'])) {
        return bad("user information with characters it may not have");
    }
    Ok(uri)
}

/// Whether a certificate's SAN is what Go's x509 parser accepts: DNS names and emails IA5
/// (ASCII), URIs as [`San::parse`] accepts them (and as written: no conversion).
pub fn go_parses(kind: &str, value: &str) -> Result<()> {
    let bad = |why: String| {
        Err(Error::NotGoParsable {
            kind: kind.to_string(),
            value: value.to_string(),
            why,
        })
    };
    if !value.is_ascii() {
        return bad("is not ASCII (an IA5String)".into());
    }
    if kind == "URI" {
        match parse_uri(value) {
            Ok(u) if u == value => {}
            Ok(_) => return bad("does not read back as written".into()),
            Err(e) => return bad(e.to_string()),
        }
    }
    Ok(())
}

fn parse_dns(text: &str) -> Result<San> {
    let bad = |why: &str| {
        Err(Error::San {
            expected: "an IP address, email, URI or DNS name",
            found: text.to_string(),
            why: why.to_string(),
        })
    };
    let name = match a_labels(text.trim()) {
        Ok(a) => a,
        Err(why) => return bad(why),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
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
pub fn from_cert(sans: &Sans) -> Result<Vec<San>> {
    if !sans.other.is_empty() {
        return Err(Error::UnsupportedSanTypes(sans.other.clone()));
    }
    let mut out = Vec::new();
    out.extend(sans.dns.iter().map(|d| San::Dns(d.to_ascii_lowercase())));
    out.extend(sans.email.iter().map(|e| San::Email(e.clone())));
    for ip in &sans.ip {
        out.push(San::Ip(
            parse_ip(ip).ok_or_else(|| Error::UnreadableIp(ip.to_string()))?,
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
    pub fn parse(add: &[String], drop: &[String]) -> Result<SanEdit> {
        let parse_all = |v: &[String]| v.iter().map(|s| San::parse(s)).collect::<Result<Vec<_>>>();
        let mut edit = SanEdit {
            add: parse_all(add)?,
            drop: parse_all(drop)?,
        };
        dedup(&mut edit.add);
        dedup(&mut edit.drop);
        if let Some(both) = edit.add.iter().find(|s| edit.drop.contains(s)) {
            return Err(Error::AddedAndDropped(both.clone()));
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
pub fn apply(current: &[San], edit: &SanEdit, serving: bool) -> Result<EditOutcome> {
    let missing: Vec<String> = edit
        .drop
        .iter()
        .filter(|s| !current.contains(s))
        .map(|s| s.to_string())
        .collect();
    if !missing.is_empty() {
        let present: Vec<String> = current.iter().map(|s| s.to_string()).collect();
        return Err(Error::NotPresent { missing, present });
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
        return Err(Error::NoSanLeft);
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
    fn international_names_become_a_labels_and_other_non_ascii_is_refused() {
        assert_eq!(
            p("Bücher.example"),
            San::Dns("xn--bcher-kva.example".into())
        );
        assert_eq!(p("*.bücher.de"), San::Dns("*.xn--bcher-kva.de".into()));
        assert_eq!(
            p("ops@bücher.de"),
            San::Email("ops@xn--bcher-kva.de".into())
        );
        assert_eq!(p("http://ü.de"), San::Uri("http://xn--tda.de".into()));
        assert_eq!(
            p("spiffe://user@ü.de:8443/p?q#f"),
            San::Uri("spiffe://user@xn--tda.de:8443/p?q#f".into())
        );
        assert_eq!(
            p("https://[fe80::1]:6443/x%20y"),
            San::Uri("https://[fe80::1]:6443/x%20y".into())
        );
        for bad in [
            "ü@bücher.de",
            "http://ü.de/ü",
            "http://a b",
            "http://a.b/c d",
            "http://a..b",
            "http://a.b.:1",
            "http://a.b:x",
            "http://a.b:99999",
            "http://[fe80::1/",
            "http://a.b/%zz",
            "http://a.b/%4",
            "http://a.b/\u{7f}",
            "ops@@x.de",
            ".ops@x.de",
            "o..ps@x.de",
            "ops@x..de",
        ] {
            let err = San::parse(bad).unwrap_err().to_string();
            assert!(!err.contains('\n'), "{err}");
        }
        go_parses("URI", "http://xn--tda.de").unwrap();
        assert!(go_parses("URI", "http://a b").is_err());
        assert!(go_parses("DNS", "bücher.de").is_err());
        assert!(go_parses("email", "ü@x.de").is_err());
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
        let err = apply(&current, &edit, true).unwrap_err().to_string();
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
