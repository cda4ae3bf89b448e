//! `certs spec`, resolved: where the spec comes from and the SAN edit parsed. A spec reads no
//! clock.

use std::path::PathBuf;

use crate::cli::args::SpecArgs;
use crate::error::{Error, Result};
use crate::spec::SanEdit;

/// Where the spec comes from.
#[derive(Debug)]
pub enum SpecSource {
    /// A built-in template, by name (`--template`).
    Template(String),
    /// A certificate file, or a kubeconfig with an embedded client certificate.
    Cert(PathBuf),
}

/// `certs spec`, resolved.
#[derive(Debug)]
pub struct SpecConfig {
    pub source: SpecSource,
    pub edit: SanEdit,
}

pub fn spec(a: SpecArgs) -> Result<SpecConfig> {
    let edit = SanEdit::parse(&a.sans.add, &a.sans.drop).map_err(Error::from)?;
    let source = match (a.cert, a.template) {
        (_, Some(name)) => SpecSource::Template(name),
        (Some(path), None) => SpecSource::Cert(path),
        (None, None) => return Err(Error::Usage("expected CERT or --template NAME".into())),
    };
    Ok(SpecConfig { source, edit })
}
