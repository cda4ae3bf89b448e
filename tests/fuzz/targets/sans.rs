//! Target `san`: --add-san/--drop-san parsing, the edit, and the certificate it signs.

use super::*;

// ---- san: --add-san/--drop-san parsing, the edit, and the certificate it signs ----

struct Signer {
    ca: certs::issue::Ca,
    original: certs::pki::cert::CertInfo,
    current: Vec<San>,
}

fn signer() -> &'static Signer {
    static S: OnceLock<Signer> = OnceLock::new();
    S.get_or_init(|| {
        // The ECDSA fixture: signing is fast enough to sign every input.
        let ssl = fixtures().join("kubeasz-ecdsa/etc/kubernetes/ssl");
        let ca = certs::issue::target::explicit_ca(&ssl.join("ca.pem"), &ssl.join("ca-key.pem"))
            .expect("the kubeasz-ecdsa CA loads");
        let leaf = std::fs::read(ssl.join("kubernetes.pem")).unwrap();
        let block = pem::parse(&leaf).unwrap();
        let original = certs::pki::cert::CertInfo::from_der(block.contents()).unwrap();
        let current = san::from_cert(&original.sans).unwrap();
        Signer {
            ca,
            original,
            current,
        }
    })
}

fn san_seeds() -> Vec<Vec<u8>> {
    let mut names: Vec<String> = Vec::new();
    for (p, b) in all_fixtures() {
        let name = p.to_string_lossy();
        if name.ends_with("-csr.json") {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
                for h in v["hosts"].as_array().into_iter().flatten() {
                    names.extend(h.as_str().map(str::to_string));
                }
            }
        }
        if let Ok(text) = std::str::from_utf8(b) {
            for block in pem::parse_many(text).unwrap_or_default() {
                if block.tag() != "CERTIFICATE" {
                    continue;
                }
                if let Ok(c) = certs::pki::cert::CertInfo::from_der(block.contents()) {
                    names.extend(c.sans.all().map(str::to_string));
                }
            }
        }
    }
    names.sort();
    names.dedup();
    let mut out: Vec<Vec<u8>> = names.iter().map(|n| n.clone().into_bytes()).collect();
    // Drops of what the signing fixture has, and a few edits of several lines.
    for s in &signer().current {
        out.push(format!("-{}", s.host()).into_bytes());
    }
    for w in names.chunks(3) {
        out.push(w.join("\n").into_bytes());
    }
    out
}

/// What Go's crypto/x509 (kube-apiserver, cfssl, kubectl) checks of a SAN when it parses a
/// certificate: dNSName, rfc822Name and URI are IA5Strings (ASCII), and a URI must be one
/// `net/url` parses, with a host made of non-empty labels.
fn go_san_check(kind: &str, s: &str) -> Result<(), String> {
    if !s.is_ascii() {
        return Err(format!(
            "{kind} SAN {s:?} is not an IA5String (RFC 5280: ASCII only); Go's x509 refuses the certificate"
        ));
    }
    if kind != "URI" {
        return Ok(());
    }
    let bad = |why: &str| {
        Err(format!(
            "URI SAN {s:?} {why}; Go's x509 refuses the certificate"
        ))
    };
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return bad("has a control character");
    }
    let Some(colon) = s.find(':') else {
        return bad("has no scheme");
    };
    let scheme = &s[..colon];
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return bad("has no valid scheme");
    }
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return bad("has a malformed %-escape");
        }
    }
    if let Some(rest) = s[colon + 1..].strip_prefix("//") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let hostport = authority.rsplit('@').next().unwrap_or("");
        if hostport.contains(' ')
            || hostport.contains(['<', '>', '"', '{', '}', '|', '\\', '^', '`'])
        {
            return bad("has an invalid character in its host");
        }
        let host = if hostport.starts_with('[') {
            hostport
        } else {
            hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
        };
        if !host.is_empty() && !host.starts_with('[') && host.split('.').any(str::is_empty) {
            return bad("has an empty label in its host");
        }
    }
    Ok(())
}

/// The certificate the tool wrote, re-parsed strictly: x509-parser, no trailing bytes, every
/// extension understood, the SANs asked for and only those, each acceptable to Go.
fn strict_cert(der: &[u8], want: &[San]) -> Result<(), String> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("a written certificate does not re-parse: {e}"))?;
    if !rest.is_empty() {
        return Err(format!(
            "a written certificate has {} trailing bytes",
            rest.len()
        ));
    }
    for ext in cert.extensions() {
        if let ParsedExtension::ParseError { error } = ext.parsed_extension() {
            return Err(format!(
                "extension {} of a written certificate does not parse: {error}",
                ext.oid
            ));
        }
    }
    let mut got: Vec<String> = Vec::new();
    if let Ok(Some(s)) = cert.subject_alternative_name() {
        for gn in &s.value.general_names {
            match gn {
                GeneralName::DNSName(d) => {
                    go_san_check("DNS", d)?;
                    got.push(format!("DNS:{d}"));
                }
                GeneralName::RFC822Name(e) => {
                    go_san_check("email", e)?;
                    got.push(format!("email:{e}"));
                }
                GeneralName::URI(u) => {
                    go_san_check("URI", u)?;
                    got.push(format!("URI:{u}"));
                }
                GeneralName::IPAddress(b) => {
                    let ip: std::net::IpAddr = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).unwrap().into(),
                        16 => <[u8; 16]>::try_from(*b).unwrap().into(),
                        n => return Err(format!("an IP SAN of {n} bytes was written")),
                    };
                    got.push(format!("IP:{ip}"));
                }
                other => return Err(format!("an unexpected SAN was written: {other:?}")),
            }
        }
    }
    let mut want: Vec<String> = want.iter().map(ToString::to_string).collect();
    got.sort();
    want.sort();
    if got != want {
        return Err(format!(
            "the written SANs {got:?} are not the ones asked for {want:?}"
        ));
    }
    Ok(())
}

fn san_target(input: &[u8]) -> Verdict {
    let text = String::from_utf8_lossy(input);
    let (mut add, mut drop) = (Vec::new(), Vec::new());
    for line in text.lines().take(64) {
        match line.strip_prefix('-') {
            Some(d) => drop.push(d.to_string()),
            None => add.push(line.to_string()),
        }
    }
    let edit = match SanEdit::parse(&add, &drop) {
        Ok(e) => e,
        Err(e) => return Ok(format!("parse {}", shape(&e.to_string()))),
    };
    let s = signer();
    let outcome = match san::apply(&s.current, &edit, true) {
        Ok(o) => o,
        Err(e) => return Ok(format!("apply {}", shape(&e.to_string()))),
    };
    let req = certs::issue::Request {
        original: &s.original,
        sans: &outcome.sans,
        policy: certs::issue::KeyPolicy::Keep,
        validity: Some(365 * 86_400),
        now: s.original.not_before + 86_400,
    };
    let issued = match certs::issue::sign(&s.ca, &req) {
        Ok(i) => i,
        Err(e) => return Ok(format!("sign {}", shape(&e.to_string()))),
    };
    strict_cert(&issued.der, &outcome.sans)?;
    let kinds: String = outcome
        .sans
        .iter()
        .map(|s| match s {
            San::Dns(_) => 'd',
            San::Email(_) => 'e',
            San::Ip(_) => 'i',
            San::Uri(_) => 'u',
        })
        .collect();
    Ok(format!(
        "signed {kinds} +{} -{}",
        outcome.added.len(),
        outcome.removed.len()
    ))
}

pub const SAN: Target = Target {
    name: "san",
    about: "spec::san (SanEdit::parse, apply), issue::sign; every certificate re-parsed by x509-parser with Go's SAN rules",
    seeds: san_seeds,
    dict: &[
        b"IP:",
        b"DNS:",
        b"IP Address:",
        b"*.",
        b"http://",
        b"https://",
        b"spiffe://cluster.local/ns/a",
        b"urn:x",
        b"@",
        b"::",
        b"::ffff:",
        b"%",
        b"%zz",
        b" ",
        b"..",
        b"xn--",
        b"\xc3\xbc",
        b"\xe2\x80\x8b",
        b"\n-",
        b"\n",
        b"255.255.255.255",
        b"[fd00::1]",
        b"localhost",
    ],
    run: san_target,
    known: &[],
};
