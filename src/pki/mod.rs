//! The node's PKI as data: certificates, keys, kubeconfigs and the links between them.

pub mod armor;
pub mod block_yaml;
pub mod cert;
pub mod decode;
pub mod error;
pub mod finding;
pub mod inventory;
pub mod key;
pub mod kubeconfig;
pub mod pem_bundle;
pub mod role;

pub use error::Error;
pub use finding::FindingCode;
pub use inventory::{CertEntry, Finding, Inventory, KeyEntry, Severity, Status};
pub use role::Role;
pub mod scan;
pub mod spki;
pub mod yaml;
