//! What can be wrong with a spec: a SAN that is not one, an edit that cannot apply, an unknown
//! template. Each message says what was expected and what was found.

use super::san::San;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A SAN argument that does not read as the type it looks like.
    #[error("expected {expected}, found `{found}` ({why})")]
    San {
        expected: &'static str,
        found: String,
        why: String,
    },

    #[error("expected an IP address after `IP:`, found `{0}`")]
    IpAfterPrefix(String),

    /// A certificate's SAN that Go's x509 parser would refuse.
    #[error("a {kind} SAN `{}` {why}", .value.escape_default())]
    NotGoParsable {
        kind: String,
        value: String,
        why: String,
    },

    #[error("expected only DNS, IP, email and URI SANs, found {}", .0.join(", "))]
    UnsupportedSanTypes(Vec<String>),

    #[error("unreadable IP SAN {0}")]
    UnreadableIp(String),

    #[error("`{0}` is both added and dropped")]
    AddedAndDropped(San),

    #[error(
        "cannot drop {}: expected one of the certificate's SANs, which are {}",
        .missing.join(", "),
        if .present.is_empty() { "none".to_string() } else { .present.join(", ") }
    )]
    NotPresent {
        missing: Vec<String>,
        present: Vec<String>,
    },

    #[error(
        "expected a serving certificate to keep at least one SAN, found none left after the edit"
    )]
    NoSanLeft,

    #[error("expected a template name ({}), found `{name}`", .known.join(", "))]
    UnknownTemplate {
        name: String,
        known: Vec<&'static str>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
