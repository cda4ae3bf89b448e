//! cfssl-style specs: reconstruct one from a certificate, edit its SANs, or start from a
//! template for a cluster that lost its files.

pub mod csr;
pub mod error;
pub mod san;
pub mod template;

pub use csr::{reconstruct, CsrSpec};
pub use error::Error;
pub use san::{San, SanEdit};
