//! Why a certificate or key cannot be issued: the CA or key cannot sign, the new certificate
//! does not verify as intended, a name cannot be derived, the bundle would not be coherent.
//! Nothing is written when issuing fails; each message says what was expected and what was
//! found.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Building or signing the certificate (serials, extensions, the CA's key).
    #[error("{0}")]
    Sign(String),

    /// A private key that cannot be read, made, used or written.
    #[error("{0}")]
    Key(String),

    /// DER that cannot be written or read back.
    #[error("{0}")]
    Der(String),

    /// The new certificate is not what it should be (checked before anything is written).
    #[error("{0}")]
    Verify(String),

    /// A common name, subject or file name for a certificate issued like another.
    #[error("{0}")]
    Name(String),

    /// The files of a bundle do not agree with what was issued.
    #[error("{0}")]
    Bundle(String),

    #[error(transparent)]
    Pki(#[from] crate::pki::Error),

    #[error(transparent)]
    Spec(#[from] crate::spec::Error),

    #[error(transparent)]
    Edit(#[from] crate::edit::Error),
}
