//! The only code that touches the OS: file reads, the clock, TLS connections.

pub mod clock;
pub mod fs;
pub mod node;
pub mod proc;
pub mod tls;
