//! Endpoints as the user and the node name them: `https://host[:port]` ([`Target`]) and the
//! host of any URL ([`url_host`]). Pure: text in, values out; nothing here connects.
//!
//! Every URL of the crate is read here, by the WHATWG parser of the `url` crate (IPv4 and
//! bracketed IPv6 literals, ports). The raw text is only looked at again to say what is wrong
//! in words the operator can act on (the parser's own errors are terse or silent: it takes
//! `https://h:` for `https://h`), and to keep a host name exactly as it was typed.

use std::fmt;
use std::str::FromStr;

use url::{Host, Url};

/// Where to connect: parsed from `https://host[:port][/]`; the port defaults to 443.
///
/// `host` is stored without brackets (`::1`, not `[::1]`); [`fmt::Display`] adds them back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl Target {
    /// `host:port` as it goes into a URL or an HTTP `Host` header (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "https://{}", self.authority())
    }
}

/// Text that is not an `https://host[:port]` endpoint: what was given and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint {input:?}: {reason}")]
pub struct InvalidTarget {
    pub input: String,
    pub reason: Problem,
}

/// What is wrong with an endpoint's text, in the operator's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("no scheme: expected https://host[:port]")]
    NoScheme,
    #[error("scheme {0:?} is not supported: only https://host[:port] endpoints can be probed")]
    Scheme(String),
    #[error("unexpected path, query or fragment {0:?}: expected only https://host[:port]")]
    Path(String),
    #[error("user information (user@) is not supported: expected https://host[:port]")]
    UserInfo,
    #[error("the host is empty: expected https://host[:port]")]
    EmptyHost,
    #[error(
        "{0:?} is not a valid host name or IP address (allowed: letters, digits, '-', '.', '_')"
    )]
    BadHost(String),
    #[error("the port after ':' is empty")]
    EmptyPort,
    #[error("port {0:?} is not a number")]
    PortNotANumber(String),
    #[error("port {0} is out of range (1-65535)")]
    PortOutOfRange(String),
    #[error("IPv6 addresses must be written in brackets, e.g. https://[::1]:6443")]
    BareIpv6,
    #[error("IPv6 address is missing its closing ']'")]
    UnclosedIpv6,
    #[error("unexpected {0:?} after the IPv6 address")]
    AfterIpv6(String),
    #[error("{0:?} in brackets is not an IPv6 address")]
    NotIpv6(String),
    /// Anything else the URL parser refused.
    #[error("{0}: expected https://host[:port]")]
    Url(url::ParseError),
}

impl FromStr for Target {
    type Err = InvalidTarget;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse_target(input).map_err(|reason| InvalidTarget {
            input: input.to_string(),
            reason,
        })
    }
}

/// The host of a URL (`https://[fd00::1]:2379` gives `fd00::1`) or of `host[:port]`; `None`
/// when the text is no URL. A host name is returned as written, an IP address in its
/// canonical form.
pub fn url_host(url: &str) -> Option<String> {
    let url = url.trim();
    let (parsed, rest) = match url.split_once("://") {
        Some((_, rest)) => (Url::parse(url), rest),
        None => (Url::parse(&format!("http://{url}")), url),
    };
    Some(match parsed.ok()?.host()? {
        Host::Ipv4(ip) => ip.to_string(),
        Host::Ipv6(ip) => ip.to_string(),
        Host::Domain(_) => split_host_port(authority(rest)).0.to_string(),
    })
}

/// The authority of what follows `scheme://`: up to the path, query or fragment, without
/// user information.
fn authority(rest: &str) -> &str {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority.rsplit_once('@').map_or(authority, |(_, a)| a)
}

/// `host` and the text after its `:` (brackets of an IPv6 literal removed), as written.
fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if let Some(inner) = authority.strip_prefix('[') {
        let (host, after) = inner.split_once(']').unwrap_or((inner, ""));
        return (host, after.strip_prefix(':'));
    }
    match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    }
}

fn parse_target(input: &str) -> Result<Target, Problem> {
    let s = input.trim();
    let Some((_, rest)) = s.split_once("://") else {
        return Err(Problem::NoScheme);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let url = Url::parse(s).map_err(|e| explain(e, authority))?;
    if url.scheme() != "https" {
        return Err(Problem::Scheme(
            s.split_once("://")
                .map_or("", |(scheme, _)| scheme)
                .to_string(),
        ));
    }
    // The parser normalises a path (`/./` is `/`): the text decides.
    if !tail.is_empty() && tail != "/" {
        return Err(Problem::Path(tail.to_string()));
    }
    if authority.contains('@') {
        return Err(Problem::UserInfo);
    }
    let (raw_host, raw_port) = split_host_port(authority);
    let host = match url.host() {
        None => return Err(Problem::EmptyHost),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        Some(Host::Domain(_)) => {
            // The parser decodes `%41` and turns Unicode into A-labels; a name that needed
            // either is not what the operator meant to probe.
            if !raw_host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            {
                return Err(Problem::BadHost(raw_host.to_string()));
            }
            raw_host.to_string()
        }
    };
    // The parser takes `host:` for `host` (the default port); the operator meant a port.
    if raw_port == Some("") {
        return Err(port_problem(""));
    }
    let port = match url.port_or_known_default() {
        Some(0) | None => return Err(port_problem(raw_port.unwrap_or_default())),
        Some(n) => n,
    };
    Ok(Target { host, port })
}

/// What the parser objected to, in the operator's terms.
fn explain(e: url::ParseError, authority: &str) -> Problem {
    use url::ParseError as P;
    let (host, port) = split_host_port(authority);
    match e {
        // Colons outside brackets beyond the port's: an IPv6 literal written bare.
        _ if !authority.starts_with('[') && authority.matches(':').count() > 1 => Problem::BareIpv6,
        P::EmptyHost => Problem::EmptyHost,
        P::InvalidPort => port_problem(port.unwrap_or_default()),
        P::InvalidIpv6Address if !authority.contains(']') => Problem::UnclosedIpv6,
        P::InvalidIpv6Address if host.parse::<std::net::Ipv6Addr>().is_ok() => {
            let after = authority.split_once(']').map_or("", |(_, a)| a);
            Problem::AfterIpv6(after.to_string())
        }
        P::InvalidIpv6Address => Problem::NotIpv6(host.to_string()),
        P::InvalidIpv4Address | P::InvalidDomainCharacter | P::IdnaError => {
            Problem::BadHost(host.to_string())
        }
        other => Problem::Url(other),
    }
}

fn port_problem(p: &str) -> Problem {
    if p.is_empty() {
        Problem::EmptyPort
    } else if !p.bytes().all(|b| b.is_ascii_digit()) {
        Problem::PortNotANumber(p.to_string())
    } else {
        Problem::PortOutOfRange(p.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parsing() {
        let ok = [
            ("https://10.0.0.1:2379", "10.0.0.1", 2379),
            ("https://[::1]:6443", "::1", 6443),
            ("https://example:443/", "example", 443),
            ("https://example", "example", 443),
            ("HTTPS://cp-1.example.com:6443", "cp-1.example.com", 6443),
            ("https://[fd00::10]", "fd00::10", 443),
        ];
        for (input, host, port) in ok {
            let t: Target = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((t.host.as_str(), t.port), (host, port), "{input}");
        }
        assert_eq!(
            "https://[::1]:6443"
                .parse::<Target>()
                .expect("v6")
                .to_string(),
            "https://[::1]:6443"
        );
        assert_eq!(
            "https://example/"
                .parse::<Target>()
                .expect("default port")
                .to_string(),
            "https://example:443"
        );
        let bad = [
            ("http://x", "scheme"),
            ("https://h:99999", "out of range"),
            ("https://h:0", "out of range"),
            ("https://h:", "empty"),
            ("https://h:abc", "not a number"),
            ("10.0.0.1:6443", "no scheme"),
            ("https://", "empty"),
            ("https://h/healthz", "path"),
            ("https://h?x=1", "query"),
            ("https://::1:6443", "brackets"),
            ("https://[::1", "closing"),
            ("https://[nope]:1", "not an IPv6"),
            ("https://user@h", "user"),
            ("https://h h", "not a valid host"),
        ];
        for (input, words) in bad {
            match input.parse::<Target>() {
                Err(e @ InvalidTarget { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains(words), "{input}: {text}");
                    assert!(text.contains(input), "{input}: {text}");
                }
                other => panic!("{input}: expected InvalidTarget, got {other:?}"),
            }
        }
    }

    #[test]
    fn url_host_reads_member_and_flag_urls() {
        let cases = [
            ("https://10.0.0.1:2379", Some("10.0.0.1")),
            ("https://[fd00::1]:2380", Some("fd00::1")),
            ("http://CP-1.example:2380/", Some("CP-1.example")),
            ("unix://etcd-1:2379", Some("etcd-1")),
            (" https://user@node-2:2379 ", Some("node-2")),
            ("node-3:2380", Some("node-3")),
            ("10.0.0.7", Some("10.0.0.7")),
            ("https://", None),
            ("https://[nope]:1", None),
        ];
        for (url, host) in cases {
            assert_eq!(url_host(url).as_deref(), host, "{url}");
        }
    }
}
