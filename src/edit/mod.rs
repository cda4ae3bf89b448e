//! Edits of configuration files that keep every other byte as it was: a kubeconfig's `server:`
//! or CA line, the master lists of component flags and of the node-local proxy; and how an
//! edited file goes into a bundle. Pure: text in, text out; the callers read and write.

pub mod bundle;
pub mod config;
pub mod error;
pub mod kubeconfig;
pub mod proxy;
pub mod yaml;

pub use error::Error;
