//! `certs rollout`: install a reissue bundle on a node safely.
//!
//! ```text
//! bundle.json + profile ──► plan::build ──► Plan (a value; `plan` and `--dry-run` print it)
//!                                              │
//!      Executor { restarter, prober, journal } ◄┘  backup → per component, in safe order:
//!                                                  swap atomically → restart → health gate
//!                                                  (served serial = new) → next, or roll back
//! ```

mod error;
pub mod exec;
pub mod journal;
pub mod membership;
pub mod plan;
pub mod probe;
pub mod profile;
pub mod rebase;
pub mod resolve;
pub mod restart;
pub mod validate;

pub use error::Error;
