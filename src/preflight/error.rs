//! What a live check can meet: an endpoint that does not answer, or answers something else
//! than the API it should speak.

use crate::endpoint::Target;
use crate::sys::tls::ProbeError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection, the handshake or the request failed.
    #[error(transparent)]
    Probe(#[from] ProbeError),

    #[error("{endpoint}{path} answered {status}")]
    Status {
        endpoint: Target,
        path: String,
        status: u16,
    },

    #[error("{endpoint}{path}: not JSON ({detail})")]
    NotJson {
        endpoint: Target,
        path: String,
        detail: String,
    },

    #[error("{endpoint}: unexpected member list ({detail})")]
    MemberList { endpoint: Target, detail: String },
}
