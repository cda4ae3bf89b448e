//! `certs`: inspect, reissue and roll out the PKI of Kubernetes control planes.
//!
//! The flow:
//! ```text
//! PATH(s) ──► pki::scan ──► Inventory (certs, keys, kubeconfigs, issuer links, findings)
//!                 │
//!                 └──► cli renders it as a table or as JSON (schema in README.md)
//! ```
//! Parsing and linking are pure: bytes and a `now` in, values out. Only [`sys`] touches the
//! file system, the network and the clock.

pub mod change;
pub mod cli;
pub mod cluster;
pub mod duration;
pub mod edit;
pub mod endpoint;
pub mod error;
pub mod issue;
pub mod node;
pub mod par;
pub mod pki;
pub mod preflight;
pub mod report;
pub mod rollout;
pub mod rotate;
pub mod spec;
pub mod sys;
