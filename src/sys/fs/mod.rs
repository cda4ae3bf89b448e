//! The file system: walking scan roots and reading files with a size bound ([`walk`]), reading
//! the files a command names ([`read`]), writing them atomically ([`write`]), the lock a
//! mutating run holds ([`lock`]) and the free space it needs ([`space`]).
//!
//! A walk never aborts on one bad entry: symlink loops, broken links, unreadable files, special
//! files and oversized files come back as [`Walked::Problem`]. Only a root that cannot be read
//! at all is an error.

mod lock;
pub mod overlay;
mod read;
mod space;
mod walk;
mod write;

pub use lock::*;
pub use read::*;
pub use space::*;
pub use walk::*;
pub use write::*;

/// A PKI file is a few KiB; a kubeconfig with embedded data rarely passes 20 KiB. Anything over
/// this is not read, so a stray disk image in /etc/kubernetes cannot stall a scan.
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;
