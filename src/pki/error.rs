//! What cannot be read as PKI: a certificate, key, CSR, PEM bundle, kubeconfig or YAML text
//! that is not what it should be. Most of these become finding messages during a scan; a
//! command that needs the value stops with them.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A DER certificate x509-parser rejects (its words).
    #[error("{0}")]
    Certificate(String),

    #[error("{0} trailing bytes after the certificate")]
    TrailingBytes(usize),

    /// A CSR x509-parser rejects (its words).
    #[error("{0}")]
    Csr(String),

    /// A key block that is not the structure its label says, or an algorithm not supported.
    #[error("{0}")]
    Key(String),

    /// A PEM bundle without what it must hold.
    #[error("{0}")]
    Pem(String),

    /// Data embedded in a kubeconfig that is not base64 of PEM of a certificate or key.
    #[error("{0}")]
    Embedded(String),

    #[error("expected a kubeconfig (YAML), found a parse error: {0}")]
    Kubeconfig(String),

    #[error("expected YAML nested at most {max} levels deep, found deeper nesting on line {line}")]
    YamlTooDeep { max: usize, line: usize },

    #[error(
        "expected YAML whose aliases expand to at most {max} nodes, found more (an alias bomb?)"
    )]
    YamlAliasBomb { max: u64 },

    /// YAML serde_yaml_ng rejects (its words).
    #[error("{0}")]
    Yaml(String),
}
