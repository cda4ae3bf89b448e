//! The inventory of a node: every certificate, key and kubeconfig a scan found, linked to each
//! other (which CA verifies each certificate, which private key pairs with it), and the findings.
//!
//! Building it is pure: the walked files come in, and so do `now` and a reader for files that
//! kubeconfigs reference outside the scanned paths. Nothing here touches the OS.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cert::CertInfo;
use super::decode::{decode, CfsslCsr, CsrInfo, Item};
use super::key::{KeyInfo, PublicKeyId};
use super::kubeconfig::{Kubeconfig, Source};
use super::role::{self, Role};
use crate::sys::fs::Walked;

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
    pub code: &'static str,
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
    /// Builds the linked inventory. `read` fetches a file a kubeconfig references that the walk
    /// did not cover (the CLI passes [`crate::sys::fs::read_entry`]).
    pub fn build(walked: Vec<Walked>, opts: &Options, read: &dyn Fn(&Path) -> Walked) -> Inventory {
        let mut inv = Inventory {
            now: opts.now,
            warn_within: opts.warn_within,
            ..Default::default()
        };
        let mut seen: HashSet<PathBuf> = HashSet::new();
        let mut pending: Vec<Kubeconfig> = Vec::new();
        let mut pending_paths: Vec<PathBuf> = Vec::new();
        for w in walked {
            inv.take(w, &mut seen, &mut pending, &mut pending_paths);
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
                        inv.finding(kc_path, Severity::Warning, "missing-reference", message);
                    }
                    walked => {
                        let (mut more, mut more_paths) = (Vec::new(), Vec::new());
                        inv.take(walked, &mut seen, &mut more, &mut more_paths);
                    }
                }
            }
        }
        for (path, kc) in pending_paths.into_iter().zip(pending) {
            inv.add_kubeconfig(path, kc, opts.root);
        }
        inv.link();
        inv
    }

    fn take(
        &mut self,
        walked: Walked,
        seen: &mut HashSet<PathBuf>,
        kubeconfigs: &mut Vec<Kubeconfig>,
        kubeconfig_paths: &mut Vec<PathBuf>,
    ) {
        let (path, bytes) = match walked {
            Walked::Problem {
                path,
                code,
                message,
            } => {
                let severity = if code == "not-a-file" {
                    Severity::Info
                } else {
                    Severity::Warning
                };
                seen.insert(path.clone());
                self.finding(&path, severity, code, message);
                return;
            }
            Walked::File { path, bytes } => (path, bytes),
        };
        seen.insert(path.clone());
        let decoded = decode(&path, &bytes);
        for problem in decoded.problems {
            self.finding(&path, Severity::Warning, "unparseable", problem);
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

    fn add_kubeconfig(&mut self, path: PathBuf, config: Kubeconfig, root: &Path) {
        let mut users = Vec::new();
        for user in &config.users {
            let field = |f: &str| Location {
                path: path.clone(),
                index: 0,
                embedded: Some(format!("users[{}].{f}", user.name)),
            };
            let cert = match &user.client_cert {
                Some(Source::Embedded(info)) => {
                    self.push_cert(field("client-certificate-data"), (**info).clone());
                    Some(self.certificates.len() - 1)
                }
                Some(Source::File(p)) => self.cert_at(&crate::sys::fs::under_root(root, p)),
                Some(Source::Broken(why)) => {
                    self.finding(
                        &path,
                        Severity::Warning,
                        "unparseable",
                        format!("user `{}`: {why}", user.name),
                    );
                    None
                }
                None => None,
            };
            let key = match &user.client_key {
                Some(Source::Embedded(info)) => {
                    self.keys.push(KeyEntry {
                        location: field("client-key-data"),
                        info: info.clone(),
                    });
                    Some(self.keys.len() - 1)
                }
                Some(Source::File(p)) => {
                    let p = crate::sys::fs::under_root(root, p);
                    self.keys.iter().position(|k| k.location.path == p)
                }
                Some(Source::Broken(why)) => {
                    self.finding(
                        &path,
                        Severity::Warning,
                        "unparseable",
                        format!("user `{}`: {why}", user.name),
                    );
                    None
                }
                None => None,
            };
            users.push((cert, key));
        }
        let cluster_cas = config
            .clusters
            .iter()
            .map(|c| match &c.ca {
                Some(Source::Embedded(ca)) => self
                    .certificates
                    .iter()
                    .position(|e| e.location.embedded.is_none() && e.info.sha256 == ca.sha256),
                Some(Source::File(p)) => self.cert_at(&crate::sys::fs::under_root(root, p)),
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

    fn cert_at(&self, path: &Path) -> Option<usize> {
        self.certificates
            .iter()
            .position(|c| c.location.path == path && c.location.embedded.is_none())
    }

    fn finding(&mut self, path: &Path, severity: Severity, code: &'static str, message: String) {
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
                    "expired",
                    Severity::Error,
                    format!("expired {}", ago(self.now - c.info.not_after)),
                ),
                Status::Expiring => (
                    "expiring",
                    Severity::Warning,
                    format!(
                        "expires in {}",
                        crate::duration::short_human(c.info.not_after - self.now)
                    ),
                ),
                Status::NotYetValid => (
                    "not-yet-valid",
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
        // Issuer groups: certificates with the same subject, SKI and key (copies of one CA).
        // may_have_issued depends only on those, and the signature only on the key.
        let mut interned: HashMap<&PublicKeyId, usize> = HashMap::new();
        let mut group_of: HashMap<(&[u8], Option<&str>, usize), usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_key: Vec<usize> = Vec::new();
        let mut by_subject: HashMap<&[u8], Vec<usize>> = HashMap::new();
        for (i, c) in self.certificates.iter().enumerate() {
            let n = interned.len();
            let key = *interned.entry(&c.info.public_key).or_insert(n);
            let id = (
                c.info.subject_raw.as_slice(),
                c.info.subject_key_id.as_deref(),
                key,
            );
            let g = *group_of.entry(id).or_insert_with(|| {
                groups.push(Vec::new());
                group_key.push(key);
                by_subject
                    .entry(&c.info.subject_raw)
                    .or_default()
                    .push(groups.len() - 1);
                groups.len() - 1
            });
            groups[g].push(i);
        }
        // Per group, lazily: ancestor path -> first member (scan order) under it, files and
        // embedded copies apart.
        type Index<'p> = [HashMap<&'p Path, usize>; 2];
        let mut indexes: Vec<Option<Index>> = (0..groups.len()).map(|_| None).collect();
        let mut links = Vec::with_capacity(self.certificates.len());
        let mut findings = Vec::new();
        for (i, c) in self.certificates.iter().enumerate() {
            let cand_groups: Vec<usize> = by_subject
                .get(c.info.issuer_raw.as_slice())
                .map(|v| {
                    v.iter()
                        .copied()
                        .filter(|&g| {
                            self.certificates[groups[g][0]]
                                .info
                                .may_have_issued(&c.info)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut tried: Vec<(usize, bool)> = Vec::new();
            let mut best: Option<(Nearness, usize)> = None;
            let mut self_verified = false;
            for &g in &cand_groups {
                let key = group_key[g];
                let ok = match tried.iter().find(|(k, _)| *k == key) {
                    Some(&(_, ok)) => ok,
                    None => {
                        let ok = c.info.is_signed_by(&self.certificates[groups[g][0]].info);
                        tried.push((key, ok));
                        ok
                    }
                };
                if !ok {
                    continue;
                }
                if groups[g].binary_search(&i).is_ok() {
                    self_verified = true;
                    break;
                }
                let certs = &self.certificates;
                let index = indexes[g].get_or_insert_with(|| {
                    let mut idx: Index = [HashMap::new(), HashMap::new()];
                    for &j in &groups[g] {
                        let loc = &certs[j].location;
                        let side = usize::from(loc.embedded.is_none());
                        for a in loc.path.ancestors() {
                            idx[side].entry(a).or_insert(j);
                        }
                    }
                    idx
                });
                for side in [1, 0] {
                    let depth = c.location.path.components().count();
                    let hit = c
                        .location
                        .path
                        .ancestors()
                        .enumerate()
                        .find_map(|(up, a)| index[side].get(a).map(|&j| (depth - up, j)));
                    if let Some((shared, j)) = hit {
                        let score = (side == 1, shared, std::cmp::Reverse(j));
                        if best.is_none_or(|(s, _)| score > s) {
                            best = Some((score, j));
                        }
                        break;
                    }
                }
            }
            let best = if self_verified {
                Some(i)
            } else {
                best.map(|(_, j)| j)
            };
            if best.is_none() {
                let path = c.location.to_string();
                let first = cand_groups.iter().map(|&g| groups[g][0]).min();
                findings.push(match first {
                    Some(j) => Finding {
                        path,
                        severity: Severity::Error,
                        code: "issuer-mismatch",
                        message: format!(
                            "expected a signature by `{}` ({}), found none: that CA's key did not sign this certificate",
                            c.info.issuer, self.certificates[j].location
                        ),
                    },
                    None => Finding {
                        path,
                        severity: Severity::Warning,
                        code: "issuer-missing",
                        message: format!("issuer `{}` is not among the scanned certificates", c.info.issuer),
                    },
                });
            }
            links.push(best);
        }
        for (c, link) in self.certificates.iter_mut().zip(links) {
            c.signed_by = link;
        }
        self.findings.extend(findings);
    }

    fn link_keys(&mut self) {
        let mut by_public: HashMap<&PublicKeyId, Vec<usize>> = HashMap::new();
        let mut by_path: HashMap<&Path, Vec<usize>> = HashMap::new();
        for (k, key) in self.keys.iter().enumerate() {
            by_path.entry(&key.location.path).or_default().push(k);
            if let (true, Some(id)) = (key.info.format.is_private(), &key.info.public_key) {
                by_public.entry(id).or_default().push(k);
            }
        }
        let mut links = Vec::with_capacity(self.certificates.len());
        let mut findings = Vec::new();
        let mut paired: HashSet<usize> = HashSet::new();
        for c in &self.certificates {
            let beside: Vec<usize> = conventional_key_paths(&c.location)
                .iter()
                .flat_map(|p| by_path.get(p.as_path()).into_iter().flatten().copied())
                .filter(|&k| {
                    let key = &self.keys[k];
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
            let matching = by_public
                .get(&c.info.public_key)
                .cloned()
                .unwrap_or_default();
            let chosen = matching
                .iter()
                .copied()
                .find(|k| beside.contains(k))
                .or_else(|| {
                    nearest(
                        &c.location,
                        matching.iter().map(|&k| (k, &self.keys[k].location)),
                    )
                });
            for &k in &beside {
                if Some(k) == chosen {
                    continue;
                }
                let key = &self.keys[k];
                let (severity, code, message) = if key.info.format.is_encrypted() {
                    (
                        Severity::Warning,
                        "key-encrypted",
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
                        "key-mismatch",
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
        let public_files: HashSet<&PublicKeyId> = self
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
                    code: "key-without-certificate",
                    message: "private key that no scanned certificate or public key pairs with"
                        .into(),
                });
            } else if key.info.format.is_encrypted() && !paired.contains(&k) {
                findings.push(Finding {
                    path: key.location.to_string(),
                    severity: Severity::Info,
                    code: "key-encrypted",
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
            || self.findings.iter().any(|f| f.code == "key-mismatch")
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

/// The candidate whose location is closest to `to`: files before embedded copies, then the most
/// shared leading path components, then scan order.
fn nearest<'a>(
    to: &Location,
    candidates: impl Iterator<Item = (usize, &'a Location)>,
) -> Option<usize> {
    candidates
        .max_by_key(|(i, loc)| {
            let shared = shared_components(&loc.path, &to.path);
            (loc.embedded.is_none(), shared, std::cmp::Reverse(*i))
        })
        .map(|(i, _)| i)
}

/// How close a candidate is: a file before an embedded copy, then shared leading path
/// components, then earlier in scan order.
type Nearness = (bool, usize, std::cmp::Reverse<usize>);

fn ago(seconds: i64) -> String {
    format!("{} ago", crate::duration::short_human(seconds))
}

/// Leading path components `a` and `b` share, on bytes (paths from one walk are normalised).
fn shared_components(a: &Path, b: &Path) -> usize {
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
