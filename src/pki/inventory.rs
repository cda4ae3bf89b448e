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

use std::collections::{HashMap, HashSet};

/// The inventory's maps: keyed by paths, key moduli and DER names, hashed tens of thousands of
/// times on a fleet; foldhash (hashbrown's default, seeded per process) instead of SipHash.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<T> = HashSet<T, foldhash::fast::RandomState>;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use aws_lc_rs::signature::ParsedPublicKey;
use serde::Serialize;
use x509_parser::asn1_rs::{Any, BitString};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::verify::verify_signature;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use super::cert::CertInfo;
use super::decode::{decode, CfsslCsr, CsrInfo, Decoded, Item};
use super::finding::FindingCode;
use super::key::{KeyInfo, PublicKeyId};
use super::kubeconfig::{Kubeconfig, Source};
use super::role::{self, Role};
use crate::error::Result;
use crate::par::{par_map, par_map_stream};
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
        let taken = par_map_stream(walked.into_iter(), Taken::from);
        Self::from_taken(taken, opts, read)
    }

    /// Builds the linked inventory from a walk as it goes ([`crate::sys::fs::listing`]): this
    /// thread pulls the walk while the others read and decode the files listed so far (those
    /// the walk saw as regular files with `read_regular`, the rest and kubeconfig references
    /// with `read`), each file's bytes dropped once decoded, so memory holds what the
    /// inventory keeps, never the tree. The first error of the walk is the result.
    pub fn build_listed(
        listing: impl Iterator<Item = Result<Listed>>,
        opts: &Options,
        read: &(dyn Fn(&Path) -> Walked + Sync),
        read_regular: &(dyn Fn(&Path) -> Walked + Sync),
    ) -> Result<Inventory> {
        let taken = par_map_stream(listing, |listed| match listed? {
            Listed::File(path) => Ok(Taken::from(read(&path))),
            Listed::Regular(path) => Ok(Taken::from(read_regular(&path))),
            Listed::Problem(problem) => Ok(Taken::from(problem)),
        });
        let taken = taken.into_iter().collect::<Result<Vec<Taken>>>()?;
        Ok(Self::from_taken(taken, opts, read))
    }

    fn from_taken(
        taken: Vec<Taken>,
        opts: &Options,
        read: &(dyn Fn(&Path) -> Walked + Sync),
    ) -> Inventory {
        let mut inv = Inventory {
            now: opts.now,
            warn_within: opts.warn_within,
            ..Default::default()
        };
        // The lists are sized once, from what the files hold (kubeconfigs add their users').
        let (mut certs, mut keys) = (0, 0);
        for t in &taken {
            let Taken::File { decoded, .. } = t else {
                continue;
            };
            for item in &decoded.items {
                match item {
                    Item::Cert { .. } => certs += 1,
                    Item::Key { .. } => keys += 1,
                    Item::Kubeconfig(kc) => {
                        for u in &kc.users {
                            certs +=
                                usize::from(matches!(u.client_cert, Some(Source::Embedded(_))));
                            keys += usize::from(matches!(u.client_key, Some(Source::Embedded(_))));
                        }
                    }
                    _ => {}
                }
            }
        }
        inv.certificates.reserve_exact(certs);
        inv.keys.reserve_exact(keys);
        let mut seen: Set<PathBuf> = Set::default();
        let mut pending: Vec<Kubeconfig> = Vec::new();
        let mut pending_paths: Vec<PathBuf> = Vec::new();
        for t in taken {
            inv.take(t, &mut seen, &mut pending, &mut pending_paths);
        }
        // Kubeconfigs point at files by absolute path on the node: read those the walk missed.
        for (kc, kc_path) in pending.iter().zip(&pending_paths) {
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
                        let (mut more, mut more_paths) = (Vec::new(), Vec::new());
                        inv.take(Taken::from(walked), &mut seen, &mut more, &mut more_paths);
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
        for (path, kc) in pending_paths.into_iter().zip(pending) {
            inv.add_kubeconfig(path, kc, opts.root, &mut index);
        }
        inv.link();
        inv
    }

    fn take(
        &mut self,
        taken: Taken,
        seen: &mut Set<PathBuf>,
        kubeconfigs: &mut Vec<Kubeconfig>,
        kubeconfig_paths: &mut Vec<PathBuf>,
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
                Item::Kubeconfig(kc) => {
                    kubeconfigs.push(*kc);
                    kubeconfig_paths.push(path.clone());
                }
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

    /// Issuer links, key pairs and the findings that follow from them.
    fn link(&mut self) {
        self.link_issuers();
        self.link_keys();
        for i in 0..self.certificates.len() {
            let c = &self.certificates[i];
            let (code, severity, message) = match c.status {
                Status::Ok => continue,
                Status::Expired => (
                    FindingCode::Expired,
                    Severity::Error,
                    format!("expired {}", ago(self.now - c.info.not_after)),
                ),
                Status::Expiring => (
                    FindingCode::Expiring,
                    Severity::Warning,
                    format!(
                        "expires in {}",
                        crate::duration::short_human(c.info.not_after - self.now)
                    ),
                ),
                Status::NotYetValid => (
                    FindingCode::NotYetValid,
                    Severity::Warning,
                    format!(
                        "not valid for another {}",
                        crate::duration::short_human(c.info.not_before - self.now)
                    ),
                ),
            };
            let path = c.location.to_string();
            self.findings.push(Finding {
                path,
                severity,
                code,
                message,
            });
        }
    }

    fn link_issuers(&mut self) {
        let certs = &self.certificates;
        // Issuer groups: certificates with the same subject, SKI and key (copies of one CA).
        // may_have_issued depends only on those, and the signature only on the key.
        let mut interned: Map<&PublicKeyId, usize> = Map::default();
        let mut group_of: Map<(&[u8], Option<&str>, usize), usize> = Map::default();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_key: Vec<usize> = Vec::new();
        let mut member_of: Vec<usize> = Vec::with_capacity(certs.len());
        let mut by_subject: Map<&[u8], Vec<usize>> = Map::default();
        let mut by_subject_ski: Map<(&[u8], Option<&str>), Vec<usize>> = Map::default();
        for c in certs {
            let n = interned.len();
            let key = *interned.entry(&c.info.public_key).or_insert(n);
            let ski = c.info.subject_key_id.as_deref();
            let id = (c.info.subject_raw.as_slice(), ski, key);
            let g = *group_of.entry(id).or_insert_with(|| {
                groups.push(Vec::new());
                group_key.push(key);
                let g = groups.len() - 1;
                by_subject.entry(&c.info.subject_raw).or_default().push(g);
                by_subject_ski
                    .entry((&c.info.subject_raw, ski))
                    .or_default()
                    .push(g);
                g
            });
            groups[g].push(member_of.len());
            member_of.push(g);
        }
        // Candidate classes: which groups may have issued a certificate depends only on its
        // issuer name and AKI (may_have_issued: the same name, and the AKI is the SKI when both
        // are there). Groups are numbered in scan order, and each class is sorted.
        let mut class_ids: Map<(&[u8], Option<&str>), usize> = Map::default();
        let mut classes: Vec<Vec<usize>> = Vec::new();
        let class_of: Vec<usize> = certs
            .iter()
            .map(|c| {
                let issuer = c.info.issuer_raw.as_slice();
                let aki = c.info.authority_key_id.as_deref();
                *class_ids.entry((issuer, aki)).or_insert_with(|| {
                    let mut class: Vec<usize> = match aki {
                        None => by_subject.get(issuer).cloned().unwrap_or_default(),
                        Some(_) => [aki, None]
                            .iter()
                            .flat_map(|&ski| {
                                by_subject_ski.get(&(issuer, ski)).into_iter().flatten()
                            })
                            .copied()
                            .collect(),
                    };
                    class.sort_unstable();
                    classes.push(class);
                    classes.len() - 1
                })
            })
            .collect();
        // On all cores. Per certificate: its own group first (a self-signed CA), then the
        // candidates from the nearest copy to the farthest, until a signature verifies; each
        // signature is checked once per distinct key. A class's index of where its copies lie
        // and a group's public key (parsed from its first member, and by aws-lc) are made
        // once, by the first thread to need them.
        let near: Vec<OnceLock<Near>> = (0..classes.len()).map(|_| OnceLock::new()).collect();
        let signers: Vec<OnceLock<Option<Signer>>> =
            (0..groups.len()).map(|_| OnceLock::new()).collect();
        let links: Vec<Option<usize>> =
            par_map(certs, |i, c| {
                let class = &classes[class_of[i]];
                if class.is_empty() {
                    return None;
                }
                let (tbs, algorithm, signature) = signed_parts(&c.info.der)?;
                let mut tried: Vec<(usize, bool)> = Vec::new();
                let mut verifies = |g: usize| {
                    let key = group_key[g];
                    if let Some(&(_, ok)) = tried.iter().find(|(k, _)| *k == key) {
                        return ok;
                    }
                    let signer = signers[g].get_or_init(|| {
                        X509Certificate::from_der(&certs[groups[g][0]].info.der)
                            .ok()
                            .map(|(_, x)| Signer::new(x.tbs_certificate.subject_pki))
                    });
                    let ok = signer
                        .as_ref()
                        .is_some_and(|s| s.signed(tbs, &algorithm, &signature));
                    tried.push((key, ok));
                    ok
                };
                let own = member_of[i];
                if class.binary_search(&own).is_ok() && verifies(own) {
                    return Some(i);
                }
                near[class_of[i]]
                    .get_or_init(|| {
                        Near::new(class.iter().flat_map(|&g| {
                            groups[g].iter().map(move |&j| (j, g, &certs[j].location))
                        }))
                    })
                    .search(&c.location.path, |g| g != own && verifies(g))
            });
        drop((near, signers));
        let mut findings = Vec::new();
        for (i, (c, link)) in certs.iter().zip(&links).enumerate() {
            if link.is_some() {
                continue;
            }
            let path = c.location.to_string();
            let first = classes[class_of[i]].first().map(|&g| groups[g][0]);
            findings.push(match first {
                Some(j) => Finding {
                    path,
                    severity: Severity::Error,
                    code: FindingCode::IssuerMismatch,
                    message: format!(
                        "expected a signature by `{}` ({}), found none: that CA's key did not sign this certificate",
                        c.info.issuer, certs[j].location
                    ),
                },
                None => Finding {
                    path,
                    severity: Severity::Warning,
                    code: FindingCode::IssuerMissing,
                    message: format!("issuer `{}` is not among the scanned certificates", c.info.issuer),
                },
            });
        }
        for (c, link) in self.certificates.iter_mut().zip(links) {
            c.signed_by = link;
        }
        self.findings.extend(findings);
    }

    fn link_keys(&mut self) {
        let keys = &self.keys;
        let mut by_public: Map<&PublicKeyId, usize> = Map::default();
        let mut holders: Vec<Vec<usize>> = Vec::new();
        let mut by_path: Map<&Path, Vec<usize>> = Map::default();
        for (k, key) in keys.iter().enumerate() {
            by_path.entry(&key.location.path).or_default().push(k);
            if let (true, Some(id)) = (key.info.format.is_private(), &key.info.public_key) {
                let n = holders.len();
                let h = *by_public.entry(id).or_insert(n);
                if h == n {
                    holders.push(Vec::new());
                }
                holders[h].push(k);
            }
        }
        // On all cores. Per public key, built by the first thread to need it: where the
        // private keys that hold it lie.
        let near: Vec<OnceLock<Near>> = (0..holders.len()).map(|_| OnceLock::new()).collect();
        let pairs: Vec<(Vec<usize>, Option<usize>)> = par_map(&self.certificates, |_, c| {
            let beside: Vec<usize> = conventional_key_paths(&c.location)
                .iter()
                .flat_map(|p| by_path.get(p.as_path()).into_iter().flatten().copied())
                .filter(|&k| {
                    let key = &keys[k];
                    key.info.format.is_private()
                        && key
                            .location
                            .embedded
                            .as_deref()
                            .map(|f| f.replace("client-key-data", ""))
                            == c.location
                                .embedded
                                .as_deref()
                                .map(|f| f.replace("client-certificate-data", ""))
                })
                .collect();
            // The first private key beside it that holds its public key, or else the nearest
            // one that does.
            let holds = |k: usize| keys[k].info.public_key.as_ref() == Some(&c.info.public_key);
            let chosen = beside
                .iter()
                .copied()
                .filter(|&k| holds(k))
                .min()
                .or_else(|| {
                    let h = *by_public.get(&c.info.public_key)?;
                    near[h]
                        .get_or_init(|| {
                            Near::new(holders[h].iter().map(|&k| (k, k, &keys[k].location)))
                        })
                        .search(&c.location.path, |_| true)
                });
            (beside, chosen)
        });
        drop(near);
        let mut links = Vec::with_capacity(self.certificates.len());
        let mut findings = Vec::new();
        let mut paired: Set<usize> = Set::default();
        for (c, (beside, chosen)) in self.certificates.iter().zip(pairs) {
            for &k in &beside {
                if Some(k) == chosen {
                    continue;
                }
                let key = &self.keys[k];
                let (severity, code, message) = if key.info.format.is_encrypted() {
                    (
                        Severity::Warning,
                        FindingCode::KeyEncrypted,
                        format!(
                            "its key `{}` is encrypted; cannot check that they pair",
                            key.location
                        ),
                    )
                } else if key.info.public_key.as_ref() == Some(&c.info.public_key) {
                    continue;
                } else {
                    let found = key
                        .info
                        .algo
                        .as_ref()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    (
                        Severity::Error,
                        FindingCode::KeyMismatch,
                        format!(
                            "expected `{}` to hold this certificate's private key ({}), found a different key ({found})",
                            key.location, c.info.key
                        ),
                    )
                };
                findings.push(Finding {
                    path: c.location.to_string(),
                    severity,
                    code,
                    message,
                });
            }
            if let Some(k) = chosen {
                paired.insert(k);
            }
            links.push(chosen);
        }
        for (c, link) in self.certificates.iter_mut().zip(links) {
            c.key = link;
        }
        // A private key that pairs with nothing. kubeadm's `sa.key` pairs with `sa.pub`.
        let public_files: Set<&PublicKeyId> = self
            .keys
            .iter()
            .filter(|k| !k.info.format.is_private())
            .filter_map(|k| k.info.public_key.as_ref())
            .collect();
        for (k, key) in self.keys.iter().enumerate() {
            let private = key.info.format.is_private();
            let has_pub = key
                .info
                .public_key
                .as_ref()
                .is_some_and(|id| public_files.contains(id));
            if private && !paired.contains(&k) && !has_pub && !key.info.format.is_encrypted() {
                findings.push(Finding {
                    path: key.location.to_string(),
                    severity: Severity::Warning,
                    code: FindingCode::KeyWithoutCertificate,
                    message: "private key that no scanned certificate or public key pairs with"
                        .into(),
                });
            } else if key.info.format.is_encrypted() && !paired.contains(&k) {
                findings.push(Finding {
                    path: key.location.to_string(),
                    severity: Severity::Info,
                    code: FindingCode::KeyEncrypted,
                    message: "encrypted private key: its certificate cannot be matched without the passphrase"
                        .into(),
                });
            }
        }
        self.findings.extend(findings);
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

/// Where a certificate's key conventionally lives: in the same file (kubelet's
/// `*-current.pem`), `x.crt` → `x.key`, `x.pem` → `x-key.pem`.
fn conventional_key_paths(loc: &Location) -> Vec<PathBuf> {
    let p = &loc.path;
    let mut out = vec![p.clone()];
    // Only the first certificate of a file goes with the key beside it; the rest is its chain
    // (kubelet's self-signed `kubelet.crt` carries its CA second).
    if loc.embedded.is_some() || loc.index > 0 {
        return if loc.index > 0 { Vec::new() } else { out };
    }
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if let Some(stem) = name.rsplit_once('.').map(|(s, _)| s) {
        out.push(p.with_file_name(format!("{stem}.key")));
        out.push(p.with_file_name(format!("{stem}-key.pem")));
    }
    out
}

/// Where candidates lie (copies of CAs, private keys), to visit them from the nearest to a
/// location to the farthest without comparing the location with each: files before embedded
/// copies, then the most leading path components shared, then scan order. Candidates come in
/// sets (the copies of one CA are one set; a key is a set of its own), each visited once.
struct Near<'p> {
    /// Per side (`[embedded, files]`): for each ancestor directory of a member (and its own
    /// path), the first member of each set under it, as `(member, set)` in scan order.
    under: [Map<&'p Path, Vec<(usize, usize)>>; 2],
    /// Per side, the first member of each set in scan order: for a location that shares no
    /// ancestor at all with them (a relative path and an absolute one).
    first: [Vec<(usize, usize)>; 2],
    sets: usize,
}

impl<'p> Near<'p> {
    /// `(member, set, location)`: each set's members together, in scan order.
    fn new(members: impl Iterator<Item = (usize, usize, &'p Location)>) -> Self {
        let mut near = Near {
            under: [Map::default(), Map::default()],
            first: [Vec::new(), Vec::new()],
            sets: 0,
        };
        let mut last_set = None;
        let mut seen_side = [false; 2];
        for (j, set, loc) in members {
            if last_set != Some(set) {
                last_set = Some(set);
                near.sets += 1;
                seen_side = [false; 2];
            }
            let side = usize::from(loc.embedded.is_none());
            if !seen_side[side] {
                seen_side[side] = true;
                near.first[side].push((j, set));
            }
            // Not the empty path above a relative one: sharing it is sharing nothing.
            for a in loc.path.ancestors().filter(|a| !a.as_os_str().is_empty()) {
                let list = near.under[side].entry(a).or_default();
                if list.last().is_some_and(|&(_, s)| s == set) {
                    break; // the set is under `a` already, and so under all of `a`'s ancestors
                }
                list.push((j, set));
            }
        }
        for side in &mut near.under {
            for list in side.values_mut() {
                list.sort_unstable();
            }
        }
        for first in &mut near.first {
            first.sort_unstable();
        }
        near
    }

    /// The first member, nearest first, of the first set `accept` takes. Each set is offered
    /// once, at its nearest member.
    fn search(&self, to: &Path, mut accept: impl FnMut(usize) -> bool) -> Option<usize> {
        let mut offered: Set<usize> = Set::default();
        for side in [1, 0] {
            let nearest_first = to
                .ancestors()
                .filter_map(|a| self.under[side].get(a))
                .flatten()
                .chain(&self.first[side]);
            for &(j, set) in nearest_first {
                if offered.len() == self.sets {
                    return None;
                }
                if offered.insert(set) && accept(set) {
                    return Some(j);
                }
            }
        }
        None
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

/// A CA's public key, to check the signatures of the certificates it may have issued.
struct Signer<'a> {
    spki: SubjectPublicKeyInfo<'a>,
    /// aws-lc's parsed key for the first common algorithm it is asked to check (an RSA key
    /// keeps its Montgomery context), or `None` when aws-lc rejects the key for it.
    parsed: OnceLock<(Common, Option<ParsedPublicKey>)>,
}

/// The signature algorithms of nearly every certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Common {
    RsaSha256,
    RsaSha384,
    RsaSha512,
    EcdsaP256Sha256,
    EcdsaP256Sha384,
    EcdsaP384Sha256,
    EcdsaP384Sha384,
    Ed25519,
}

impl Common {
    /// The algorithm x509-parser's `verify_signature` checks `signature` with for a key like
    /// `issuer`, when it is a common one.
    fn of(signature: &AlgorithmIdentifier, issuer: &SubjectPublicKeyInfo) -> Option<Common> {
        use x509_parser::oid_registry::*;
        let oid = &signature.algorithm;
        let curve = || {
            let params = issuer.algorithm.parameters.as_ref()?;
            let curve = params.as_oid().ok()?;
            Some((curve == OID_EC_P256, curve == OID_NIST_EC_P384))
        };
        Some(if *oid == OID_PKCS1_SHA256WITHRSA {
            Common::RsaSha256
        } else if *oid == OID_PKCS1_SHA384WITHRSA {
            Common::RsaSha384
        } else if *oid == OID_PKCS1_SHA512WITHRSA {
            Common::RsaSha512
        } else if *oid == OID_SIG_ECDSA_WITH_SHA256 {
            match curve()? {
                (true, _) => Common::EcdsaP256Sha256,
                (_, true) => Common::EcdsaP384Sha256,
                _ => return None,
            }
        } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
            match curve()? {
                (true, _) => Common::EcdsaP256Sha384,
                (_, true) => Common::EcdsaP384Sha384,
                _ => return None,
            }
        } else if *oid == OID_SIG_ED25519 {
            Common::Ed25519
        } else {
            return None;
        })
    }

    fn algorithm(self) -> &'static dyn aws_lc_rs::signature::VerificationAlgorithm {
        use aws_lc_rs::signature::*;
        match self {
            Common::RsaSha256 => &RSA_PKCS1_2048_8192_SHA256,
            Common::RsaSha384 => &RSA_PKCS1_2048_8192_SHA384,
            Common::RsaSha512 => &RSA_PKCS1_2048_8192_SHA512,
            Common::EcdsaP256Sha256 => &ECDSA_P256_SHA256_ASN1,
            Common::EcdsaP256Sha384 => &ECDSA_P256_SHA384_ASN1,
            Common::EcdsaP384Sha256 => &ECDSA_P384_SHA256_ASN1,
            Common::EcdsaP384Sha384 => &ECDSA_P384_SHA384_ASN1,
            Common::Ed25519 => &ED25519,
        }
    }
}

impl<'a> Signer<'a> {
    fn new(spki: SubjectPublicKeyInfo<'a>) -> Self {
        Signer {
            spki,
            parsed: OnceLock::new(),
        }
    }

    /// Whether this key made `signature` over `tbs`: what x509-parser's `verify_signature`
    /// says, with the key parsed once rather than for every certificate.
    fn signed(&self, tbs: &[u8], algorithm: &AlgorithmIdentifier, signature: &BitString) -> bool {
        if let Some(common) = Common::of(algorithm, &self.spki) {
            let (first, key) = self.parsed.get_or_init(|| {
                let key = &self.spki.subject_public_key.data;
                (common, ParsedPublicKey::new(common.algorithm(), key).ok())
            });
            if *first == common {
                return key
                    .as_ref()
                    .is_some_and(|k| k.verify_sig(tbs, &signature.data).is_ok());
            }
        }
        verify_signature(&self.spki, algorithm, signature, tbs).is_ok()
    }
}

/// The signed bytes of a certificate (its TBSCertificate), its signature algorithm and its
/// signature, read without parsing the rest: what a signature check needs.
fn signed_parts(der: &[u8]) -> Option<(&[u8], AlgorithmIdentifier<'_>, BitString<'_>)> {
    let (_, certificate) = Any::from_der(der).ok()?;
    let body = certificate.data;
    let (rest, _) = Any::from_der(body).ok()?;
    let tbs = &body[..body.len() - rest.len()];
    let (rest, algorithm) = AlgorithmIdentifier::from_der(rest).ok()?;
    let (_, signature) = BitString::from_der(rest).ok()?;
    Some((tbs, algorithm, signature))
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

    fn loc(path: &str, embedded: bool) -> Location {
        Location {
            path: PathBuf::from(path),
            index: 0,
            embedded: embedded.then(|| "users[u].client-key-data".to_string()),
        }
    }

    /// The linear scan `Near` replaces: files first, then the most leading path components
    /// shared (on bytes), then scan order.
    fn brute_nearest(to: &Path, candidates: &[Location]) -> Option<usize> {
        fn shared(a: &Path, b: &Path) -> usize {
            use std::os::unix::ffi::OsStrExt;
            let (a, b) = (a.as_os_str().as_bytes(), b.as_os_str().as_bytes());
            let n = a.iter().zip(b).take_while(|(x, y)| x == y).count();
            let ends = |p: &[u8]| n == p.len() || p[n] == b'/';
            let full = if ends(a) && ends(b) {
                n
            } else {
                a[..n].iter().rposition(|&c| c == b'/').unwrap_or(0)
            };
            let prefix = &a[..full];
            usize::from(prefix.first() == Some(&b'/'))
                + prefix
                    .split(|&c| c == b'/')
                    .filter(|s| !s.is_empty())
                    .count()
        }
        candidates
            .iter()
            .enumerate()
            .max_by_key(|(i, l)| {
                (
                    l.embedded.is_none(),
                    shared(&l.path, to),
                    std::cmp::Reverse(*i),
                )
            })
            .map(|(i, _)| i)
    }

    #[test]
    fn near_finds_what_a_linear_scan_finds() {
        let candidates = [
            loc("/fleet/c1/cp/etc/kubernetes/pki/ca.key", false),
            loc("/fleet/c1/cp/etc/kubernetes/admin.conf", true),
            loc("/fleet/c2/cp/etc/kubernetes/pki/ca.key", false),
            loc("/fleet/c2/worker/etc/kubernetes/pki/ca.key", false),
            loc("/fleet/c3/cp/etc/kubernetes/admin.conf", true),
            loc("/fleet/c10/cp/etc/kubernetes/pki/ca.key", false),
            loc("/other/ca.key", false),
            loc("relative/c1/ca.key", false),
        ];
        let targets = [
            "/fleet/c1/cp/etc/kubernetes/pki/apiserver.crt",
            "/fleet/c1/cp/etc/kubernetes/admin.conf",
            "/fleet/c2/worker/var/lib/kubelet/pki/kubelet-client-current.pem",
            "/fleet/c3/cp/etc/kubernetes/pki/apiserver.crt",
            "/fleet/c1/cp/etc/kubernetes/pki/ca.key",
            "/fleet/c1",
            "/elsewhere/x.crt",
            "relative/c1/x.crt",
            "relative2/x.crt",
        ];
        // Every subset of the candidates (each its own set, as keys are), every target.
        for mask in 1u32..(1 << candidates.len()) {
            let subset: Vec<Location> = (0..candidates.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| candidates[i].clone())
                .collect();
            let near = Near::new(subset.iter().enumerate().map(|(i, l)| (i, i, l)));
            for to in targets {
                let to = Path::new(to);
                assert_eq!(
                    near.search(to, |_| true),
                    brute_nearest(to, &subset),
                    "{to:?} among {subset:?}"
                );
            }
        }
    }

    #[test]
    fn near_offers_each_set_once_nearest_first() {
        let members = [
            (0, 0, loc("/a/x/1.crt", false)),
            (1, 0, loc("/a/y/1.crt", false)),
            (2, 1, loc("/a/y/2.crt", false)),
            (3, 2, loc("/b/3.crt", false)),
        ];
        let near = Near::new(members.iter().map(|(j, s, l)| (*j, *s, l)));
        let mut offered = Vec::new();
        let found = near.search(Path::new("/a/y/leaf.crt"), |set| {
            offered.push(set);
            false
        });
        assert_eq!(found, None);
        assert_eq!(offered, vec![0, 1, 2]);
        // The set taken is answered with its member nearest the location.
        assert_eq!(near.search(Path::new("/a/y/leaf.crt"), |s| s == 0), Some(1));
        assert_eq!(near.search(Path::new("/a/x/leaf.crt"), |s| s == 0), Some(0));
    }

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
