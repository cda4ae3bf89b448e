//! Linking the inventory: which CA signed each certificate (a signature check per candidate,
//! nearest copy first) and which private key pairs with it (beside it by convention, or else
//! the nearest holder of its public key), on all cores, and the findings that follow.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use x509_parser::prelude::{FromDer, X509Certificate};

use super::signer::{signed_parts, Signer};
use super::FindingCode;
use super::{ago, Finding, Inventory, Location, Map, Set, Severity, Status};
use crate::par::par_map;
use crate::pki::key::PublicKeyId;

impl Inventory {
    /// Issuer links, key pairs and the findings that follow from them.
    pub(super) fn link(&mut self) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
