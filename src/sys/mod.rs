//! The only code that touches the OS: file reads, the clock, TLS connections.
#![allow(clippy::disallowed_methods)] // this is where the OS is touched

pub mod alloc;
pub mod clock;
pub mod error;
pub mod fs;
pub mod http;
pub mod node;
pub mod proc;
pub mod scratch;
pub mod term;
pub mod tls;

pub use error::Error;
