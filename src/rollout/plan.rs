//! The rollout plan: a value built from a bundle and a profile, serialisable, printed by
//! `rollout plan` and `apply --dry-run`, and stored in the journal so that `resume` and
//! `rollback` need nothing else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::profile::Restart;
use crate::error::{Error, Result};

/// The subset of `bundle.json` a rollout needs.
#[derive(Debug, Deserialize)]
pub struct BundleManifest {
    pub schema: String,
    pub ca: BundleCa,
    pub files: Vec<BundleEntry>,
    /// A master retirement's etcd membership change (`certs change --retire` writes it).
    #[serde(default)]
    pub etcd_membership: Option<BundleMembership>,
    /// The `--root` the bundle was made under (`certs change --root R` records R; a bundle
    /// made on the CA host from a node's export records `/`): its targets and CA paths are
    /// absolute paths under it, and a rollout with another `--root` re-roots them
    /// ([`BundleManifest::rerooted`]). Absent: the targets are used as written.
    #[serde(default)]
    pub root: Option<PathBuf>,
}

impl BundleManifest {
    /// The targets and CA paths of a bundle made under `self.root`, moved under `root` (the
    /// rollout's `--root`): `<made-under>/etc/x` becomes `<root>/etc/x`. A path outside the
    /// root it was made under is kept as written. Without a recorded root nothing moves.
    pub fn rerooted(mut self, root: &Path) -> BundleManifest {
        let Some(from) = self.root.clone() else {
            return self;
        };
        let move_path = |p: &Path| -> PathBuf {
            match p.strip_prefix(&from) {
                Ok(rel) => crate::sys::fs::under_root(root, &Path::new("/").join(rel)),
                Err(_) => p.to_path_buf(),
            }
        };
        for f in &mut self.files {
            f.target = move_path(&f.target);
            if let Some(ca) = &f.ca {
                f.ca = Some(move_path(ca));
            }
        }
        self.ca.certificate = move_path(Path::new(&self.ca.certificate))
            .display()
            .to_string();
        self.root = Some(root.to_path_buf());
        self
    }
}

/// `"etcd_membership": {"remove": ["etcd3", "10.6.0.13"]}`: the members (names, or addresses
/// of their peer or client URLs) a retirement removes from the etcd cluster.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct BundleMembership {
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct BundleCa {
    pub certificate: String,
}

#[derive(Debug, Deserialize)]
pub struct BundleEntry {
    pub bundle_path: PathBuf,
    #[serde(default)]
    pub ca: Option<PathBuf>,
    pub target: PathBuf,
    pub kind: String,
    pub role: String,
    pub components: Vec<String>,
    pub mode: String,
    pub old_sha256: String,
    pub new_sha256: String,
    pub old_serial: Option<String>,
    pub new_serial: Option<String>,
    pub sans: Option<SansAfter>,
}

#[derive(Debug, Deserialize)]
pub struct SansAfter {
    pub after: Vec<String>,
}

/// One file to replace.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSwap {
    pub target: PathBuf,
    /// The new file, inside the bundle.
    pub source: PathBuf,
    pub kind: String,
    pub role: String,
    /// The CA that signed the new certificate.
    pub ca: PathBuf,
    /// Written as an octal string (`"0644"`), as bundle.json does.
    #[serde(with = "octal")]
    pub mode: u32,
    pub old_sha256: String,
    pub new_sha256: String,
    pub old_serial: Option<String>,
    pub new_serial: Option<String>,
    /// SANs of the new certificate (`IP:…`, `DNS:…`), to tell which endpoint serves it.
    pub sans: Vec<String>,
    /// The path the bundle names, when it is a symlink (or goes through one) to `target`: the
    /// file the link resolves to is the one replaced, and the link is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<PathBuf>,
}

/// How a gate trusts what the endpoint serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// Verify the served chain against this CA file (the one that signed what it serves).
    Ca(PathBuf),
    /// The component serves a certificate it made itself at start (controller-manager and
    /// scheduler without `--tls-cert-file`): no CA can verify it, so the gate proves liveness
    /// only, on a loopback address, and requires the served certificate to be self-signed.
    SelfSigned,
    /// Plain HTTP on loopback (kubelet and kube-proxy `/healthz`): liveness only.
    Plain,
}

impl Trust {
    pub fn describe(&self) -> String {
        match self {
            Trust::Ca(ca) => format!("verified against {}", ca.display()),
            Trust::SelfSigned => "self-signed (liveness only)".into(),
            Trust::Plain => "plain HTTP (liveness only)".into(),
        }
    }
}

/// `scheme://host:port` of a gate, the port checked (1-65535).
pub fn parse_url(
    url: &str,
) -> std::result::Result<(&'static str, crate::endpoint::Target), super::Error> {
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        ("https", r)
    } else if let Some(r) = url.strip_prefix("http://") {
        ("http", r)
    } else {
        return Err(super::Error::NotHttpUrl { url: url.into() });
    };
    // The authority only: a gate's path is kept apart (`Gate::path`).
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let target = format!("https://{authority}")
        .parse::<crate::endpoint::Target>()
        .map_err(|source| super::Error::BadUrl {
            url: url.into(),
            source,
        })?;
    if target.port == 0 {
        return Err(super::Error::PortZero { url: url.into() });
    }
    Ok((scheme, target))
}

/// A client certificate and key a probe presents (etcd with `--client-cert-auth`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A health gate: the endpoint must serve `serves`' serial (new after a swap, old after a
/// rollback), verified by `trust`, and answer `path` with 200.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Gate {
    /// `https://host:port` or `http://host:port`.
    pub url: String,
    pub path: Option<String>,
    pub expect: Option<String>,
    pub trust: Trust,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<Identity>,
    /// Index into `Plan::files` of the certificate this endpoint serves, if it is in the bundle.
    pub serves: Option<usize>,
    /// Where the endpoint was read from (`/etc/etcd.env: ETCD_LISTEN_CLIENT_URLS`, `--health`).
    #[serde(default)]
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    pub component: String,
    pub kind: String,
    /// None: files nobody restarts for (a kubeconfig for kubectl).
    pub restart: Option<Restart>,
    /// Indices into `Plan::files`, swapped together right before the restart.
    pub files: Vec<usize>,
    /// Changed files it reads that an earlier step swapped (why it restarts too).
    #[serde(default)]
    pub reads: Vec<usize>,
    pub gates: Vec<Gate>,
    /// Why there is no gate, when there cannot be one; or what the gate cannot prove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where the component was read: its manifest or unit, or `profile NAME`.
    #[serde(default)]
    pub from: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    pub bundle: PathBuf,
    pub ca: PathBuf,
    pub profile: String,
    pub files: Vec<FileSwap>,
    pub steps: Vec<Step>,
    /// The etcd membership change of a retirement: its steps come last in `steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<super::membership::Retirement>,
}

/// Reads `bundle.json` and checks that every new file is intact.
pub fn read_bundle(dir: &Path) -> Result<BundleManifest> {
    let path = dir.join("bundle.json");
    let bytes = crate::sys::fs::read_file(&path)?;
    let manifest: BundleManifest = serde_json::from_slice(&bytes).map_err(|e| Error::Input {
        path: path.clone(),
        expected: "a certs bundle manifest (certs.bundle/v1)".into(),
        found: e.to_string(),
    })?;
    if manifest.schema != "certs.bundle/v1" {
        return Err(Error::Input {
            path,
            expected: "schema certs.bundle/v1".into(),
            found: manifest.schema.clone(),
        });
    }
    Ok(manifest)
}

impl Plan {
    /// Confines every target to the node under `root`: each is resolved there
    /// ([`crate::sys::fs::resolve_in_root`]: symlinks followed inside the root, a `..` or link
    /// climbing out of it refused) and must be a regular file of at most
    /// [`crate::sys::fs::MAX_FILE_SIZE`] (or nothing, for a file the bundle adds). A symlinked
    /// target becomes the file it resolves to, the link kept in `link`. One problem per line.
    pub fn confine(&mut self, root: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        for f in &mut self.files {
            let real = match crate::sys::fs::resolve_in_root(root, &f.target) {
                Ok(real) => real,
                Err(e) => {
                    problems.push(format!("target {e}"));
                    continue;
                }
            };
            match crate::sys::fs::file_kind(&real) {
                crate::sys::fs::Kind::Absent | crate::sys::fs::Kind::File => {}
                crate::sys::fs::Kind::TooLarge(len) => problems.push(format!(
                    "target `{}`: expected a certificate, key or config file of at most {} bytes, found {len} bytes",
                    real.display(),
                    crate::sys::fs::MAX_FILE_SIZE
                )),
                crate::sys::fs::Kind::Other(what) => problems.push(format!(
                    "target `{}`: expected a regular file, found {what}",
                    real.display()
                )),
            }
            if real != f.target {
                if crate::sys::fs::goes_through_symlink(&f.target) {
                    f.link = Some(f.target.clone());
                }
                f.target = real;
            }
        }
        for (i, f) in self.files.iter().enumerate() {
            if let Some(g) = self.files[..i].iter().find(|g| g.target == f.target) {
                problems.push(format!(
                    "targets `{}` and `{}` are the same file `{}`",
                    g.link.as_ref().unwrap_or(&g.target).display(),
                    f.link.as_ref().unwrap_or(&f.target).display(),
                    f.target.display()
                ));
            }
        }
        problems
    }

    /// Every target must be a file the node's PKI or configuration has a place for: under the
    /// standard PKI locations, the places configs and kubeconfigs that name masters live
    /// ([`crate::preflight::CONFIG_LOCATIONS`], [`crate::preflight::KUBECONFIG_LOCATIONS`]),
    /// a file a component of the node reads, is launched from, or is configured by, or a path
    /// `vouched` for (files a profile names, `--allow-dir`). A bundle that names anything else
    /// (`/etc/passwd`, a shell profile) is refused whatever its hashes say. `targets` are after [`Plan::confine`] (a symlinked target counts by its
    /// link too). One problem per line.
    pub fn unreferenced(
        &self,
        root: &Path,
        node: &[crate::node::Component],
        vouched: &[PathBuf],
    ) -> Vec<String> {
        let places: Vec<PathBuf> = crate::pki::scan::STANDARD_LOCATIONS
            .iter()
            .chain(crate::preflight::CONFIG_LOCATIONS)
            .chain(crate::preflight::KUBECONFIG_LOCATIONS)
            .map(|p| crate::sys::fs::under_root(root, Path::new(p)))
            .chain(vouched.iter().cloned())
            .collect();
        // Targets lie under the canonical root (confine resolved them); the node's paths under
        // the root as given.
        let canon = crate::sys::fs::canonical_root(root);
        let named = |p: &Path| {
            let given = p
                .strip_prefix(&canon)
                .map_or_else(|_| p.to_path_buf(), |rel| root.join(rel));
            let p = given.as_path();
            places.iter().any(|place| p.starts_with(place))
                || node.iter().any(|c| {
                    c.source == p
                        || c.files.iter().any(|f| f == p)
                        || c.unit_files.iter().any(|f| f == p)
                })
        };
        self.files
            .iter()
            .filter(|f| !named(&f.target) && !f.link.as_deref().is_some_and(named))
            .map(|f| {
                format!(
                    "target `{}`: expected a file of the node's PKI or configuration (under {}, or read by one of its components), found none that names it (pass --allow-dir for a PKI directory the node does not name)",
                    f.link.as_ref().unwrap_or(&f.target).display(),
                    crate::pki::scan::STANDARD_LOCATIONS.join(", ")
                )
            })
            .collect()
    }

    /// Readable text for `rollout plan` and `apply --dry-run`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "plan for bundle {} (profile {}, CA {})\n",
            self.bundle.display(),
            self.profile,
            self.ca.display()
        );
        out.push_str("files:\n");
        for f in &self.files {
            let serial = match (&f.old_serial, &f.new_serial) {
                (Some(o), Some(n)) => format!(" serial {o} -> {n}"),
                _ => String::new(),
            };
            let via = f
                .link
                .as_ref()
                .map(|l| format!(" (via the symlink {}, kept)", l.display()))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}{via} <- {} ({}, mode {:04o}){serial}\n",
                f.target.display(),
                f.source.display(),
                f.kind,
                f.mode
            ));
        }
        if let Some(r) = &self.etcd {
            out.push_str(&r.render_header());
        }
        out.push_str("steps, one at a time:\n");
        for (n, s) in self.steps.iter().enumerate() {
            if let Some(text) = self.etcd.as_ref().and_then(|r| r.render_step(n)) {
                out.push_str(&text);
                continue;
            }
            let restart = match &s.restart {
                Some(Restart::Systemd(u)) => format!("systemctl restart {u}"),
                Some(Restart::SystemdReload(u)) => {
                    format!("systemctl daemon-reload, then systemctl restart {u}")
                }
                Some(Restart::StaticPod(m)) => {
                    format!("park and restore static pod manifest {}", m.display())
                }
                Some(Restart::Command(c)) => format!("run `{c}`"),
                None => "no restart".into(),
            };
            let reads = if s.reads.is_empty() {
                String::new()
            } else {
                format!(" (also reads {} file(s) swapped earlier)", s.reads.len())
            };
            let from = if s.from.is_empty() {
                String::new()
            } else {
                format!(" [{}]", s.from)
            };
            out.push_str(&format!(
                "  {}. {}: swap {} file(s){reads}, {restart}{from}\n",
                n + 1,
                s.component,
                s.files.len()
            ));
            for g in &s.gates {
                let serial = g
                    .serves
                    .and_then(|i| self.files[i].new_serial.clone())
                    .map(|s| format!(", must serve serial {s}"))
                    .unwrap_or_default();
                let path = g
                    .path
                    .as_deref()
                    .map(|p| format!(", GET {p} must answer 200"))
                    .unwrap_or_default();
                let client = g
                    .client
                    .as_ref()
                    .map(|c| format!(", presenting {}", c.cert.display()))
                    .unwrap_or_default();
                let unproven = if g.serves.is_none() && matches!(g.trust, Trust::Ca(_)) {
                    ", serving certificate unchanged: health only"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "     gate: {} {}{serial}{path}{client}{unproven} (from {})\n",
                    g.url,
                    g.trust.describe(),
                    g.origin
                ));
            }
            if let Some(note) = &s.note {
                out.push_str(&format!("     note: {note}\n"));
            }
        }
        out
    }
}

/// File modes as octal strings (`"0600"`); a number is read too (journals written before).
mod octal {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{mode:04o}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Mode {
            Number(u32),
            Text(String),
        }
        match Mode::deserialize(d)? {
            Mode::Number(n) => Ok(n),
            Mode::Text(t) => u32::from_str_radix(&t, 8).map_err(serde::de::Error::custom),
        }
    }
}
