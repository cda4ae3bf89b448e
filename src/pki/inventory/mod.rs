//! The inventory of a node: every certificate, key and kubeconfig a scan found, linked to each
//! other (which CA verifies each certificate, which private key pairs with it), and the findings.
//!
//! Building it is pure: the walked files come in, and so do `now` and a reader for files that
//! kubeconfigs reference outside the scanned paths. Nothing here touches the OS.
//!
//! It scales to fleets (thousands of node trees whose CAs all carry kubeadm's names): every
//! lookup goes through an index (paths, key identities, CA identities, fingerprints, where the
//! copies of a CA lie), so no step compares each item with every other; decoding and signature
//! checks run on all cores, and the result does not depend on how many there are.

mod link;
mod signer;

use std::collections::{HashMap, HashSet};

/// The inventory's maps: keyed by paths, key moduli and DER names, hashed tens of thousands of
/// times on a fleet; foldhash (hashbrown's default, seeded per process) instead of SipHash.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<T> = HashSet<T, foldhash::fast::RandomState>;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::par::par_stream;
use crate::pki::cert::CertInfo;
use crate::pki::decode::{decode, CfsslCsr, CsrInfo, Decoded, Item};
use crate::pki::finding::FindingCode;
use crate::pki::key::KeyInfo;
use crate::pki::kubeconfig::{Kubeconfig, Source};
use crate::pki::role::{self, Role};
use crate::sys::fs::{Listed, Walked};

/// Where an item sits: a file, its position among the file's certificates (or keys), and for
/// data embedded in a kubeconfig, the field it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub index: usize,
    pub embedded: Option<String>,
}

impl Location {
    fn file(path: &Path, index: usize) -> Self {
        Location {
            path: path.to_path_buf(),
            index,
            embedded: None,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        match &self.embedded {
            Some(field) => write!(f, "#{field}"),
            None if self.index > 0 => write!(f, "#{}", self.index),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    Expiring,
    Expired,
    NotYetValid,
}

impl Status {
    pub fn at(now: i64, warn_within: i64, not_before: i64, not_after: i64) -> Status {
        if now > not_after {
            Status::Expired
        } else if now < not_before {
            Status::NotYetValid
        } else if not_after - now < warn_within {
            Status::Expiring
        } else {
            Status::Ok
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Expiring => "expiring",
            Status::Expired => "expired",
            Status::NotYetValid => "not-yet-valid",
        }
    }
}

#[derive(Debug, Clone)]
pub struct CertEntry {
    pub location: Location,
    pub info: CertInfo,
    pub role: Role,
    pub status: Status,
    /// Index into `certificates` of the CA whose signature verifies this one (itself when
    /// self-signed).
    pub signed_by: Option<usize>,
    /// Index into `keys` of the private key that pairs with it.
    pub key: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub location: Location,
    pub info: KeyInfo,
}

#[derive(Debug, Clone)]
pub struct KubeconfigEntry {
    pub path: PathBuf,
    pub config: Kubeconfig,
    /// Per user (same order as `config.users`): the client certificate and key, as inventory
    /// indices.
    pub users: Vec<(Option<usize>, Option<usize>)>,
    /// Per cluster: the scanned CA certificate file identical to the one the kubeconfig trusts.
    pub cluster_cas: Vec<Option<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub path: String,
    pub severity: Severity,
    /// Stable identifier: `expired`, `key-mismatch`, `issuer-missing`, `unparseable` …
    pub code: FindingCode,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Inventory {
    pub certificates: Vec<CertEntry>,
    pub keys: Vec<KeyEntry>,
    pub kubeconfigs: Vec<KubeconfigEntry>,
    pub csrs: Vec<(PathBuf, CsrInfo)>,
    pub cfssl_csrs: Vec<(PathBuf, CfsslCsr)>,
    pub cfssl_configs: Vec<(PathBuf, Vec<String>)>,
    pub findings: Vec<Finding>,
    pub now: i64,
    pub warn_within: i64,
}

/// What the linker needs besides the files.
pub struct Options<'a> {
    pub now: i64,
    /// Seconds: a certificate expiring sooner than this is `expiring`.
    pub warn_within: i64,
    /// Where the node's `/` is (kubeconfigs reference absolute paths).
    pub root: &'a Path,
}

impl Inventory {
    /// Builds the linked inventory from files already read. `read` fetches a file a kubeconfig
    /// references that the walk did not cover (the CLI passes [`crate::sys::fs::read_entry`]).
    /// Files are decoded, and signatures checked, on all cores; the result does not depend on
    /// how many there are.
    pub fn build(
        walked: Vec<Walked>,
        opts: &Options,
        read: &(dyn Fn(&Path) -> Walked + Sync),
    ) -> Inventory {
        let mut b = Builder::new(opts);
        par_stream(walked.into_iter(), Taken::from, |t| b.take(t));
        b.finish(opts, read)
    }

    /// Builds the linked inventory from a walk as it goes ([`crate::sys::fs::listing`]): this
    /// thread pulls the walk while the others read and decode the files listed so far (those
    /// the walk saw as regular files with `read_regular`, the rest and kubeconfig references
    /// with `read`), each file's bytes dropped once decoded, so memory holds what the
    /// inventory keeps, never the tree; once the walk is done, this thread takes the decoded
    /// files in, in walk order, while the others decode the rest. The first error of the walk
    /// is the result.
    pub fn build_listed(
        listing: impl Iterator<Item = Result<Listed>>,
        opts: &Options,
        read: &(dyn Fn(&Path) -> Walked + Sync),
        read_regular: &(dyn Fn(&Path) -> Walked + Sync),
    ) -> Result<Inventory> {
        let mut b = Builder::new(opts);
        let mut failed = None;
        let decode = |listed: Result<Listed>| match listed? {
            Listed::File(path) => Ok(Taken::from(read(&path))),
            Listed::Regular(path) => Ok(Taken::from(read_regular(&path))),
            Listed::Problem(problem) => Ok(Taken::from(problem)),
        };
        par_stream(listing, decode, |t: Result<Taken>| match t {
            Ok(t) if failed.is_none() => b.take(t),
            Ok(_) => {}
            Err(e) => {
                failed.get_or_insert(e);
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(b.finish(opts, read)),
        }
    }
}

/// An inventory being built: decoded files are taken in one by one, in walk order, and
/// [`Builder::finish`] reads what kubeconfigs reference, indexes and links.
struct Builder {
    inv: Inventory,
    /// Every path taken in (files, and problems met at a path).
    seen: Set<PathBuf>,
    /// Kubeconfigs and their paths, added once every file they may reference is in.
    pending: Vec<(PathBuf, Kubeconfig)>,
}

impl Builder {
    fn new(opts: &Options) -> Builder {
        Builder {
            inv: Inventory {
                now: opts.now,
                warn_within: opts.warn_within,
                ..Default::default()
            },
            seen: Set::default(),
            pending: Vec::new(),
        }
    }

    fn take(&mut self, taken: Taken) {
        self.inv.take(taken, &mut self.seen, &mut self.pending);
    }

    fn finish(self, opts: &Options, read: &(dyn Fn(&Path) -> Walked + Sync)) -> Inventory {
        let Builder {
            mut inv,
            mut seen,
            pending,
        } = self;
        // Kubeconfigs point at files by absolute path on the node: read those the walk missed.
        for (kc_path, kc) in &pending {
            for path in referenced_files(kc) {
                let path = crate::sys::fs::under_root(opts.root, &path);
                if seen.contains(&path) {
                    continue;
                }
                match read(&path) {
                    Walked::Problem { message, .. } => {
                        seen.insert(path.clone());
                        let message = format!(
                            "references `{}`, which cannot be read: {message}",
                            path.display()
                        );
                        inv.finding(
                            kc_path,
                            Severity::Warning,
                            FindingCode::MissingReference,
                            message,
                        );
                    }
                    walked => {
                        // A referenced file that is a kubeconfig is not followed further.
                        inv.take(Taken::from(walked), &mut seen, &mut Vec::new());
                    }
                }
            }
        }
        // What kubeconfigs refer to, by path and by fingerprint: only files are referenced,
        // and all of them are in by now. Keys are looked up by path among embedded ones too.
        let mut index = Lookup::default();
        for (i, c) in inv.certificates.iter().enumerate() {
            if c.location.embedded.is_none() {
                index.cert_at.entry(c.location.path.clone()).or_insert(i);
                index
                    .cert_by_sha256
                    .entry(c.info.sha256.clone())
                    .or_insert(i);
            }
        }
        for (k, key) in inv.keys.iter().enumerate() {
            index.key_at.entry(key.location.path.clone()).or_insert(k);
        }
        for (path, kc) in pending {
            inv.add_kubeconfig(path, kc, opts.root, &mut index);
        }
        inv.link();
        inv
    }
}

impl Inventory {
    fn take(
        &mut self,
        taken: Taken,
        seen: &mut Set<PathBuf>,
        kubeconfigs: &mut Vec<(PathBuf, Kubeconfig)>,
    ) {
        let (path, decoded) = match taken {
            Taken::Problem {
                path,
                code,
                message,
            } => {
                let severity = if code == FindingCode::NotAFile {
                    Severity::Info
                } else {
                    Severity::Warning
                };
                self.finding(&path, severity, code, message);
                seen.insert(path);
                return;
            }
            Taken::File { path, decoded } => (path, decoded),
        };
        for problem in decoded.problems {
            self.finding(&path, Severity::Warning, FindingCode::Unparseable, problem);
        }
        for item in decoded.items {
            match item {
                Item::Cert { index, info } => self.push_cert(Location::file(&path, index), *info),
                Item::Key { index, info } => self.keys.push(KeyEntry {
                    location: Location::file(&path, index),
                    info,
                }),
                Item::Csr(csr) => self.csrs.push((path.clone(), csr)),
                Item::CfsslCsr(spec) => self.cfssl_csrs.push((path.clone(), spec)),
                Item::CfsslConfig { profiles } => self.cfssl_configs.push((path.clone(), profiles)),
                Item::Kubeconfig(kc) => kubeconfigs.push((path.clone(), *kc)),
            }
        }
        seen.insert(path);
    }

    fn push_cert(&mut self, location: Location, info: CertInfo) {
        let role = role::detect(&location.path, &info);
        let status = Status::at(self.now, self.warn_within, info.not_before, info.not_after);
        self.certificates.push(CertEntry {
            location,
            info,
            role,
            status,
            signed_by: None,
            key: None,
        });
    }

    fn add_kubeconfig(
        &mut self,
        path: PathBuf,
        mut config: Kubeconfig,
        root: &Path,
        index: &mut Lookup,
    ) {
        let mut users = Vec::new();
        for user in &mut config.users {
            let field = |f: &str| Location {
                path: path.clone(),
                index: 0,
                embedded: Some(format!("users[{}].{f}", user.name)),
            };
            let cert = match &mut user.client_cert {
                Some(source @ Source::Embedded(_)) => {
                    let Source::Embedded(info) = std::mem::replace(source, Source::Inventoried)
                    else {
                        unreachable!("matched as embedded")
                    };
                    self.push_cert(field("client-certificate-data"), *info);
                    Some(self.certificates.len() - 1)
                }
                Some(Source::File(p)) => {
                    let at = crate::sys::fs::under_root(root, p);
                    let found = index.cert_at.get(&at).copied();
                    if found.is_none() {
                        self.holds_nothing(
                            &path,
                            &user.name,
                            "client-certificate",
                            &at,
                            "certificate",
                        );
                    }
                    found
                }
                Some(Source::Broken(why)) => {
                    self.finding(
                        &path,
                        Severity::Warning,
                        FindingCode::Unparseable,
                        format!("user `{}`: {why}", user.name),
                    );
                    None
                }
                // Kubeconfigs come in once; nothing is inventoried before this.
                Some(Source::Inventoried) | None => None,
            };
            let key = match &mut user.client_key {
                Some(source @ Source::Embedded(_)) => {
                    let Source::Embedded(info) = std::mem::replace(source, Source::Inventoried)
                    else {
                        unreachable!("matched as embedded")
                    };
                    self.keys.push(KeyEntry {
                        location: field("client-key-data"),
                        info,
                    });
                    let k = self.keys.len() - 1;
                    index.key_at.entry(path.clone()).or_insert(k);
                    Some(k)
                }
                Some(Source::File(p)) => {
                    let at = crate::sys::fs::under_root(root, p);
                    let found = index.key_at.get(&at).copied();
                    if found.is_none() {
                        self.holds_nothing(&path, &user.name, "client-key", &at, "private key");
                    }
                    found
                }
                Some(Source::Broken(why)) => {
                    self.finding(
                        &path,
                        Severity::Warning,
                        FindingCode::Unparseable,
                        format!("user `{}`: {why}", user.name),
                    );
                    None
                }
                // Kubeconfigs come in once; nothing is inventoried before this.
                Some(Source::Inventoried) | None => None,
            };
            users.push((cert, key));
        }
        let cluster_cas = config
            .clusters
            .iter()
            .map(|c| match &c.ca {
                Some(Source::Embedded(ca)) => index.cert_by_sha256.get(&ca.sha256).copied(),
                Some(Source::File(p)) => index
                    .cert_at
                    .get(&crate::sys::fs::under_root(root, p))
                    .copied(),
                _ => None,
            })
            .collect();
        self.kubeconfigs.push(KubeconfigEntry {
            path,
            config,
            users,
            cluster_cas,
        });
    }

    /// A kubeconfig's reference to a file that was read but holds no `what`: a finding, unless
    /// the file could not be read at all (already a finding of its own).
    fn holds_nothing(&mut self, kubeconfig: &Path, user: &str, field: &str, at: &Path, what: &str) {
        let shown = at.display().to_string();
        let already = self.findings.iter().any(|f| {
            f.path == shown
                || (f.code == FindingCode::MissingReference && f.message.contains(&shown))
        });
        if !already {
            self.finding(
                kubeconfig,
                Severity::Warning,
                FindingCode::MissingReference,
                format!("user `{user}`: {field} `{shown}` holds no {what}"),
            );
        }
    }

    fn finding(&mut self, path: &Path, severity: Severity, code: FindingCode, message: String) {
        self.findings.push(Finding {
            path: path.display().to_string(),
            severity,
            code,
            message,
        });
    }

    /// Whether anything makes `--warn-within` fail: expired, expiring or not-yet-valid
    /// certificates, or a certificate paired with the wrong key.
    pub fn has_problems(&self) -> bool {
        self.certificates.iter().any(|c| c.status != Status::Ok)
            || self
                .findings
                .iter()
                .any(|f| f.code == FindingCode::KeyMismatch)
    }
}

fn referenced_files(kc: &Kubeconfig) -> Vec<PathBuf> {
    let users = kc.users.iter().flat_map(|u| {
        [
            u.client_cert.as_ref().and_then(file_of),
            u.client_key.as_ref().and_then(file_of),
        ]
    });
    let cas = kc.clusters.iter().map(|c| c.ca.as_ref().and_then(file_of));
    users.chain(cas).flatten().cloned().collect()
}

fn file_of<T>(s: &Source<T>) -> Option<&PathBuf> {
    match s {
        Source::File(p) => Some(p),
        _ => None,
    }
}

/// The lookups kubeconfigs need: the first file certificate at a path and with a fingerprint,
/// the first key at a path.
#[derive(Default)]
struct Lookup {
    cert_at: Map<PathBuf, usize>,
    cert_by_sha256: Map<String, usize>,
    key_at: Map<PathBuf, usize>,
}

/// One file, decoded (on any thread), before it is merged into the inventory in walk order.
enum Taken {
    File {
        path: PathBuf,
        decoded: Decoded,
    },
    Problem {
        path: PathBuf,
        code: FindingCode,
        message: String,
    },
}

impl From<Walked> for Taken {
    fn from(w: Walked) -> Taken {
        match w {
            Walked::File { path, bytes } => {
                let decoded = decode(&path, &bytes);
                Taken::File { path, decoded }
            }
            Walked::Problem {
                path,
                code,
                message,
            } => Taken::Problem {
                path,
                code: code.into(),
                message,
            },
        }
    }
}

fn ago(seconds: i64) -> String {
    format!("{} ago", crate::duration::short_human(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    /// A self-signed CA named `CN=kubernetes` (no AKI, as kubeadm writes CAs).
    fn ca() -> Ca {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(ca: &Ca, cn: &str, aki: bool) -> String {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(vec![]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = aki;
        params.signed_by(&key, &ca.issuer).unwrap().pem() + &key.serialize_pem()
    }

    fn file(path: &str, text: String) -> Walked {
        Walked::File {
            path: PathBuf::from(path),
            bytes: text.into_bytes(),
        }
    }

    #[test]
    fn cas_of_one_name_link_within_their_cluster() {
        // Three clusters whose CAs share kubeadm's name; leaves with and without an AKI, and a
        // leaf whose CA was not scanned.
        let cas: Vec<Ca> = (0..3).map(|_| ca()).collect();
        let stray = ca();
        let mut walked = Vec::new();
        for (c, ca) in cas.iter().enumerate() {
            walked.push(file(&format!("/fleet/c{c}/pki/ca.crt"), ca.pem.clone()));
            walked.push(file(&format!("/fleet/c{c}/pki/a.pem"), leaf(ca, "a", true)));
            walked.push(file(
                &format!("/fleet/c{c}/pki/b.pem"),
                leaf(ca, "b", false),
            ));
            walked.push(file(&format!("/fleet/c{c}/copy/ca.crt"), ca.pem.clone()));
        }
        walked.push(file("/fleet/c0/pki/stray.pem", leaf(&stray, "s", false)));
        let opts = Options {
            now: 1_800_000_000,
            warn_within: 0,
            root: Path::new("/"),
        };
        let inv = Inventory::build(walked, &opts, &|p| Walked::Problem {
            path: p.to_path_buf(),
            code: crate::sys::fs::Unread::Unreadable,
            message: "not in the test".into(),
        });
        let at = |p: &str| {
            inv.certificates
                .iter()
                .position(|c| c.location.path == Path::new(p))
                .unwrap()
        };
        for c in 0..3 {
            let ca = at(&format!("/fleet/c{c}/pki/ca.crt"));
            let copy = at(&format!("/fleet/c{c}/copy/ca.crt"));
            assert_eq!(inv.certificates[ca].signed_by, Some(ca));
            assert_eq!(inv.certificates[copy].signed_by, Some(copy));
            for name in ["a", "b"] {
                let leaf = at(&format!("/fleet/c{c}/pki/{name}.pem"));
                assert_eq!(inv.certificates[leaf].signed_by, Some(ca), "c{c}/{name}");
                assert!(inv.certificates[leaf].key.is_some());
            }
        }
        let stray = at("/fleet/c0/pki/stray.pem");
        assert_eq!(inv.certificates[stray].signed_by, None);
        let codes: Vec<_> = inv
            .findings
            .iter()
            .map(|f| (f.code.as_str(), f.path.as_str()))
            .collect();
        assert_eq!(codes, vec![("issuer-mismatch", "/fleet/c0/pki/stray.pem")]);
        assert!(inv.findings[0].message.contains("/fleet/c0/pki/ca.crt"));
    }
}
