//! Edits of configuration files that keep every other byte as it was: a kubeconfig's `server:`
//! or CA line, the master lists of component flags and of the node-local proxy. Pure: text in,
//! text out; the callers read, bundle and write.

pub mod config;
pub mod proxy;
