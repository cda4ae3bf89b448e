//! Finding codes: the stable identifiers of [`super::Finding`]s, serialised (JSON, table,
//! Prometheus labels) as the kebab-case strings README.md lists.

use serde::Serialize;

use crate::sys::fs::Unread;

/// What a finding is about. Serialises to exactly the strings of [`FindingCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum FindingCode {
    /// A certificate past its `notAfter`.
    Expired,
    /// A certificate that expires within `--warn-within`.
    Expiring,
    /// A certificate before its `notBefore`.
    NotYetValid,
    /// A certificate beside a private key that does not pair with it.
    KeyMismatch,
    /// An encrypted private key: its pairing cannot be checked.
    KeyEncrypted,
    /// A private key no scanned certificate or public key pairs with.
    KeyWithoutCertificate,
    /// A certificate whose issuer is not among the scanned certificates.
    IssuerMissing,
    /// A certificate whose named issuer did not sign it.
    IssuerMismatch,
    /// A file (or a kubeconfig field) that could not be decoded.
    Unparseable,
    /// A file that could not be read.
    Unreadable,
    /// A file larger than any PKI file can plausibly be; not read.
    TooLarge,
    /// A device, FIFO or socket; not read.
    NotAFile,
    /// A symlink that leads back to itself or an ancestor; not followed.
    SymlinkLoop,
    /// More symlinked directories than a walk follows.
    SymlinkLimit,
    /// A kubeconfig's reference to a file that holds nothing of what it should.
    MissingReference,
}

impl FindingCode {
    /// The code as JSON, the table and README.md write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            FindingCode::Expired => "expired",
            FindingCode::Expiring => "expiring",
            FindingCode::NotYetValid => "not-yet-valid",
            FindingCode::KeyMismatch => "key-mismatch",
            FindingCode::KeyEncrypted => "key-encrypted",
            FindingCode::KeyWithoutCertificate => "key-without-certificate",
            FindingCode::IssuerMissing => "issuer-missing",
            FindingCode::IssuerMismatch => "issuer-mismatch",
            FindingCode::Unparseable => "unparseable",
            FindingCode::Unreadable => "unreadable",
            FindingCode::TooLarge => "too-large",
            FindingCode::NotAFile => "not-a-file",
            FindingCode::SymlinkLoop => "symlink-loop",
            FindingCode::SymlinkLimit => "symlink-limit",
            FindingCode::MissingReference => "missing-reference",
        }
    }

    /// Whether the code means a file (or a kubeconfig's reference) could not be read.
    pub fn is_read_error(self) -> bool {
        matches!(
            self,
            FindingCode::Unreadable
                | FindingCode::Unparseable
                | FindingCode::TooLarge
                | FindingCode::SymlinkLoop
                | FindingCode::SymlinkLimit
                | FindingCode::MissingReference
        )
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<FindingCode> for String {
    fn from(code: FindingCode) -> String {
        code.as_str().to_string()
    }
}

/// Why a walk did not read a file, as a finding.
impl From<Unread> for FindingCode {
    fn from(why: Unread) -> FindingCode {
        match why {
            Unread::Unreadable => FindingCode::Unreadable,
            Unread::TooLarge => FindingCode::TooLarge,
            Unread::NotAFile => FindingCode::NotAFile,
            Unread::SymlinkLoop => FindingCode::SymlinkLoop,
            Unread::SymlinkLimit => FindingCode::SymlinkLimit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [FindingCode; 15] = [
        FindingCode::Expired,
        FindingCode::Expiring,
        FindingCode::NotYetValid,
        FindingCode::KeyMismatch,
        FindingCode::KeyEncrypted,
        FindingCode::KeyWithoutCertificate,
        FindingCode::IssuerMissing,
        FindingCode::IssuerMismatch,
        FindingCode::Unparseable,
        FindingCode::Unreadable,
        FindingCode::TooLarge,
        FindingCode::NotAFile,
        FindingCode::SymlinkLoop,
        FindingCode::SymlinkLimit,
        FindingCode::MissingReference,
    ];

    #[test]
    fn finding_codes_serialise_to_the_strings_they_always_had() {
        for code in ALL {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
            assert_eq!(code.to_string(), code.as_str());
        }
        let strings: Vec<&str> = ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            strings,
            [
                "expired",
                "expiring",
                "not-yet-valid",
                "key-mismatch",
                "key-encrypted",
                "key-without-certificate",
                "issuer-missing",
                "issuer-mismatch",
                "unparseable",
                "unreadable",
                "too-large",
                "not-a-file",
                "symlink-loop",
                "symlink-limit",
                "missing-reference",
            ]
        );
    }

    #[test]
    fn a_walk_problem_keeps_its_code() {
        for (why, code) in [
            (Unread::Unreadable, "unreadable"),
            (Unread::TooLarge, "too-large"),
            (Unread::NotAFile, "not-a-file"),
            (Unread::SymlinkLoop, "symlink-loop"),
            (Unread::SymlinkLimit, "symlink-limit"),
        ] {
            assert_eq!(why.as_str(), code);
            assert_eq!(FindingCode::from(why).as_str(), code);
        }
    }
}
