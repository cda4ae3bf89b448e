//! The verdict on a served chain ([`Trust`]), and how webpki's objections become one in words
//! an operator can act on (which names the certificate covers, when it expired).

use std::fmt;

use rustls::pki_types::UnixTime;
use rustls::CertificateError;

/// The verdict on a served chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Trust {
    /// Chains to the given roots and covers the server name.
    Verified,
    /// Chains to the given roots but does not cover `name`; `detail` says what it covers.
    NameNotCovered { name: String, detail: String },
    /// Does not chain to the given roots, or is expired, badly signed …: rustls's words.
    Untrusted { reason: String },
    /// Not verified, on explicit request (insecure).
    NotChecked,
}

impl Trust {
    /// Verified against the given roots (not merely unchecked).
    pub fn is_verified(&self) -> bool {
        matches!(self, Trust::Verified)
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Verified => write!(f, "verified"),
            Trust::NameNotCovered { name, detail } => write!(
                f,
                "chains to the given CA but does not cover the name {name}: {detail}"
            ),
            Trust::Untrusted { reason } => write!(f, "not trusted: {reason}"),
            Trust::NotChecked => write!(f, "not checked (insecure)"),
        }
    }
}

/// Turns webpki's objection into a [`Trust`] verdict.
pub(super) fn classify(e: &rustls::Error, name: &str) -> Trust {
    let rustls::Error::InvalidCertificate(ce) = e else {
        return Trust::Untrusted {
            reason: e.to_string(),
        };
    };
    match ce {
        CertificateError::NotValidForNameContext { presented, .. } => {
            let names: Vec<String> = presented.iter().map(|p| friendly_san(p)).collect();
            let detail = if names.is_empty() {
                "the certificate has no subjectAltName entries, so it is valid for no name"
                    .to_string()
            } else {
                format!(
                    "the certificate is valid for {}, not for {name}",
                    names.join(", ")
                )
            };
            Trust::NameNotCovered {
                name: name.to_string(),
                detail,
            }
        }
        CertificateError::NotValidForName => Trust::NameNotCovered {
            name: name.to_string(),
            detail: format!("the certificate's subjectAltNames do not include {name}"),
        },
        CertificateError::UnknownIssuer => Trust::Untrusted {
            reason: format!("it does not chain to the given CA certificate(s) ({e})"),
        },
        CertificateError::BadSignature => Trust::Untrusted {
            reason: format!("a signature in the chain does not verify ({e})"),
        },
        CertificateError::ExpiredContext { time, not_after } => Trust::Untrusted {
            reason: format!(
                "a certificate in the chain expired at {} (checked at {})",
                rfc3339(*not_after),
                rfc3339(*time)
            ),
        },
        CertificateError::NotValidYetContext { time, not_before } => Trust::Untrusted {
            reason: format!(
                "a certificate in the chain is not valid before {} (checked at {})",
                rfc3339(*not_before),
                rfc3339(*time)
            ),
        },
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            Trust::Untrusted {
                reason: format!(
                    "the certificate is not usable for TLS server authentication ({e})"
                ),
            }
        }
        _ => Trust::Untrusted {
            reason: e.to_string(),
        },
    }
}

/// `DnsName("a.b")` → `DNS:a.b`, `IpAddress(10.0.0.1)` → `IP:10.0.0.1` (webpki's Debug forms).
fn friendly_san(presented: &str) -> String {
    if let Some(dns) = presented
        .strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
    {
        return format!("DNS:{dns}");
    }
    if let Some(ip) = presented
        .strip_prefix("IpAddress(")
        .and_then(|s| s.strip_suffix(')'))
    {
        return format!("IP:{ip}");
    }
    presented.to_string()
}

fn rfc3339(t: UnixTime) -> String {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|dt| {
            dt.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} (UNIX)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::tls::probe;
    use crate::sys::tls::test_server::*;
    use rcgen::ExtendedKeyUsagePurpose;

    #[test]
    fn verified_with_the_right_ca() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Nothing,
        );
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(probe.trust, Trust::Verified);
        assert_eq!(probe.handshake_error, None);
        assert_eq!(probe.chain.len(), 1);
        assert!(probe.serves_leaf(leaf.0.as_ref()));
        assert_eq!(probe.target, target);
        server.join().expect("server thread");
    }

    #[test]
    fn verified_over_tls12_too() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, server) = serve(
            server_config(&leaf, ClientAuth::None, true),
            1,
            Reply::Nothing,
        );
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        assert_eq!(probe.trust, Trust::Verified);
        assert_eq!(probe.handshake_error, None);
        server.join().expect("server thread");
    }

    #[test]
    fn expired_server_certificate_is_untrusted_with_dates() {
        let ca = ca("kubernetes");
        let leaf = issue(
            &ca,
            &["127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            true,
        );
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            1,
            Reply::Nothing,
        );
        let probe = probe(&target, &opts(&[&ca])).expect("probe");
        match &probe.trust {
            Trust::Untrusted { reason } => {
                assert!(reason.contains("expired at 2020-01-01"), "{reason}")
            }
            t => panic!("expected Untrusted, got {t:?}"),
        }
        assert!(probe.serves_leaf(leaf.0.as_ref()));
    }

    #[test]
    fn name_not_covered_says_what_the_certificate_covers() {
        let ca = ca("kubernetes");
        let leaf = server_leaf(&ca);
        let (target, _server) = serve(
            server_config(&leaf, ClientAuth::None, false),
            2,
            Reply::Nothing,
        );

        let mut o = opts(&[&ca]);
        o.server_name = Some("10.21.22.101".to_string());
        let p = probe(&target, &o).expect("probe by IP");
        match &p.trust {
            Trust::NameNotCovered { name, detail } => {
                assert_eq!(name, "10.21.22.101");
                assert!(detail.contains("IP:127.0.0.1"), "{detail}");
                assert!(detail.contains("DNS:localhost"), "{detail}");
            }
            t => panic!("expected NameNotCovered, got {t:?}"),
        }
        assert!(p.serves_leaf(leaf.0.as_ref()));

        o.server_name = Some("kubernetes.default.svc".to_string());
        let p = probe(&target, &o).expect("probe by DNS name");
        match &p.trust {
            Trust::NameNotCovered { name, detail } => {
                assert_eq!(name, "kubernetes.default.svc");
                assert!(detail.contains("127.0.0.1"), "{detail}");
            }
            t => panic!("expected NameNotCovered, got {t:?}"),
        }
    }
}
