//! The whole `reissue` operation for a set of targets: load them, find their CAs, apply the SAN
//! edit, sign, verify, and lay out the bundle. Nothing is written here; the caller writes the
//! bundle (or, for a dry run, only prints it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::bundle::{self, BundleFile, CaRef, Manifest, Reissued, SanDiff};
use super::target::{self, Target};
use super::{sign, Ca, Issued, KeyPolicy, Request};
use crate::error::{Error, Result};
use crate::pki::key::{KeyAlgo, KeyFormat};
use crate::spec::san::{self, EditOutcome, SanEdit};

pub struct ReissueRequest<'a> {
    pub targets: &'a [PathBuf],
    pub edit: &'a SanEdit,
    /// Explicit CA certificate and key; otherwise found beside each target.
    pub ca: Option<(&'a Path, &'a Path)>,
    pub new_key: bool,
    pub key_algo: Option<KeyAlgo>,
    pub validity: Option<i64>,
    pub now: i64,
}

pub struct Done {
    pub target: Target,
    pub ca_location: String,
    pub issued: Issued,
    pub outcome: EditOutcome,
    pub diff: SanDiff,
}

pub struct Reissue {
    pub done: Vec<Done>,
    pub files: Vec<BundleFile>,
    pub manifest: Manifest,
}

pub fn reissue(req: &ReissueRequest) -> Result<Reissue> {
    let mut targets = Vec::new();
    for path in req.targets {
        targets.extend(target::load(path)?);
    }
    let explicit = match req.ca {
        Some((cert, key)) => Some(target::explicit_ca(cert, key)?),
        None => None,
    };
    let mut found: HashMap<String, Ca> = HashMap::new();
    let mut scans = target::Scans::new(req.now);
    let mut done = Vec::new();
    let mut key_files = Vec::new();
    for t in targets {
        let ca = match &explicit {
            Some(ca) => ca,
            None => {
                let ca = target::discover_ca(&t, &mut scans)?;
                found.entry(ca.location.clone()).or_insert(ca)
            }
        };
        let input = |found: String| Error::Input {
            path: t.path.clone(),
            expected: "a certificate whose SANs can be edited".into(),
            found,
        };
        let current = san::from_cert(&t.info.sans).map_err(input)?;
        let outcome = san::apply(&current, req.edit, t.info.serves_tls())
            .map_err(|e| Error::Usage(format!("{}: {e}", t.path.display())))?;
        let policy = match (req.new_key, &req.key_algo) {
            (false, _) => KeyPolicy::Keep,
            (true, Some(algo)) => KeyPolicy::New(algo.clone()),
            (true, None) => KeyPolicy::New(t.info.key.clone()),
        };
        let key_file = if req.new_key && t.user.is_none() {
            Some(key_file_of(&t, &mut scans)?)
        } else {
            None
        };
        let request = Request {
            original: &t.info,
            sans: &outcome.sans,
            policy,
            validity: req.validity,
            now: req.now,
        };
        let issued =
            sign(ca, &request).map_err(|e| Error::Usage(format!("{}: {e}", t.path.display())))?;
        key_files.push(key_file);
        done.push(Done {
            diff: SanDiff::new(&current, &outcome),
            ca_location: ca.location.clone(),
            target: t,
            issued,
            outcome,
        });
    }
    let items: Vec<Reissued> = done
        .iter()
        .zip(&key_files)
        .map(|(d, k)| Reissued {
            target: &d.target,
            ca: absolute(&d.ca_location),
            issued: &d.issued,
            diff: d.diff.clone(),
            key_file: k.clone(),
        })
        .collect();
    let files = bundle::files(&items).map_err(Error::Usage)?;
    let first_ca = explicit.as_ref().or_else(|| found.values().next());
    let manifest = Manifest {
        schema: "certs.bundle/v1",
        created: crate::duration::rfc3339(req.now),
        ca: CaRef {
            certificate: first_ca.map(|c| absolute(&c.location)).unwrap_or_default(),
            subject: first_ca.map(|c| c.info.subject.clone()).unwrap_or_default(),
        },
        files,
    };
    let files = manifest.files.clone();
    Ok(Reissue {
        done,
        files,
        manifest,
    })
}

/// Where a target's private key lives (to be replaced under `--new-key`), its format and bytes.
/// Without one on disk, the conventional name beside the certificate, PKCS#8.
fn key_file_of(t: &Target, scans: &mut target::Scans) -> Result<(PathBuf, KeyFormat, Vec<u8>)> {
    let inv = scans.of(t.path.parent().unwrap_or(Path::new("/")))?;
    let entry = inv.certificates.iter().find(|c| {
        c.location.path == t.path && c.location.index == 0 && c.location.embedded.is_none()
    });
    if let Some(key) = entry.and_then(|c| c.key).map(|k| &inv.keys[k]) {
        if key.location.path == t.path {
            return Err(Error::Usage(format!(
                "{}: certificate and key share one file; --new-key cannot replace them separately",
                t.path.display()
            )));
        }
        let bytes = crate::sys::fs::read_file(&key.location.path)?;
        return Ok((key.location.path.clone(), key.info.format, bytes));
    }
    let name = t
        .path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("cert");
    let key_name = match name.rsplit_once('.') {
        Some((stem, "pem")) => format!("{stem}-key.pem"),
        Some((stem, _)) => format!("{stem}.key"),
        None => format!("{name}.key"),
    };
    Ok((
        t.path.with_file_name(key_name),
        KeyFormat::Pkcs8,
        Vec::new(),
    ))
}

fn absolute(location: &str) -> String {
    std::path::absolute(location)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| location.to_string())
}
