//! Binds a bundle to the node: which component reads each new file (from the node's own
//! manifests and units, [`crate::node`]), how each restarts, and the health gate that proves it
//! (where it serves, which CA verifies it, which client certificate the probe presents). The
//! profile only fills in what the node does not say. Pure: file contents come through `read`.
//!
//! Precedence, per bundle file: a profile component that names the file explicitly; else every
//! component of the node that reads it; else the profile's component of the kind `reissue`
//! recorded for it; else nobody (swapped without a restart). A component restarts when any file
//! it reads changed; the file is swapped right before the first of them restarts.

use std::path::{Path, PathBuf};

mod etcd;
mod gates;

pub use etcd::etcd_access;
use gates::gates_for;
pub use gates::{covers, is_loopback, sans_of};

use super::plan::{BundleManifest, FileSwap, Gate, Identity, Plan, Step, Trust};
use super::profile::{rank, Health, Profile, Restart};
use crate::error::{Error, Result};
use crate::node::{Component as NodeComponent, Runs};
use crate::pki::cert::CertInfo;
use crate::pki::decode::{decode, Item};

/// Per-component overrides from the command line (`NAME=VALUE` already split).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub restart_cmd: Vec<(String, String)>,
    pub health: Vec<(String, String)>,
    pub health_ca: Vec<(String, PathBuf)>,
    pub health_cert: Vec<(String, PathBuf)>,
    pub health_key: Vec<(String, PathBuf)>,
    /// Restart these even if none of their files changed.
    pub restart: Vec<String>,
    /// `--profile` was given: its components describe this node, so they take the files of
    /// their kind even where the node runs a component of that kind that reads other files.
    /// Detected (not given), the node's own components are the authority: a file of a kind
    /// whose component on this node does not read it is swapped without a restart.
    pub profile_given: bool,
    /// The plan has etcd membership steps: `--health*` for `etcd` reach them, so they are not
    /// an error when no file of etcd changed.
    pub etcd_membership: bool,
}

/// Reads a file's current bytes (or `None`).
pub type Read<'a> = &'a dyn Fn(&Path) -> Option<Vec<u8>>;

/// A component that may take part: from the node or from the profile.
pub(super) struct Cand<'a> {
    name: String,
    kind: String,
    restart: Restart,
    node: Option<&'a NodeComponent>,
    /// Profile components only: the files it names explicitly, and its health templates.
    explicit: Vec<PathBuf>,
    health: Vec<Health>,
    from: String,
}

pub(super) fn cands<'a>(node: &'a [NodeComponent], profile: &Profile) -> Vec<Cand<'a>> {
    let mut out: Vec<Cand> = Vec::new();
    for c in node {
        // Control-plane components by kind; a node-local proxy by its own name (kube-lb,
        // nginx-proxy, haproxy), as operators call it.
        let base = match (&c.runs, c.kind.as_str()) {
            (Runs::Systemd(u), "node-local-lb") => u.clone(),
            (Runs::StaticPod(m), "node-local-lb") => m
                .file_stem()
                .map_or(c.kind.clone(), |s| s.to_string_lossy().into_owned()),
            _ => c.kind.clone(),
        };
        let n = out
            .iter()
            .filter(|o| o.name == base || o.name.starts_with(&format!("{base}-")))
            .count();
        let name = if n == 0 {
            base
        } else {
            format!("{base}-{}", n + 1)
        };
        out.push(Cand {
            name,
            kind: c.kind.clone(),
            restart: match &c.runs {
                Runs::StaticPod(m) => Restart::StaticPod(m.clone()),
                Runs::Systemd(u) => Restart::Systemd(u.clone()),
            },
            node: Some(c),
            explicit: vec![],
            health: vec![],
            from: c.source.display().to_string(),
        });
    }
    for c in &profile.components {
        out.push(Cand {
            name: c.name.clone(),
            kind: c.kind.clone(),
            restart: c.restart.clone(),
            node: None,
            explicit: c.files.clone(),
            health: c.health.clone(),
            from: format!("profile {}", profile.name),
        });
    }
    out
}

pub(super) fn same(a: &Path, b: &Path) -> bool {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    abs(a) == abs(b)
}

/// Builds the plan for `manifest` (the bundle in `dir`) on the node under `root`, with the
/// problems met while binding it (a gate that needs what the node lacks).
#[allow(clippy::too_many_arguments)]
pub fn build(
    dir: &Path,
    root: &Path,
    manifest: &BundleManifest,
    node: &[NodeComponent],
    profile: &Profile,
    overrides: &Overrides,
    read: Read,
) -> Result<(Plan, Vec<String>)> {
    let dir = std::path::absolute(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let ca = PathBuf::from(&manifest.ca.certificate);
    let files: Vec<FileSwap> = manifest
        .files
        .iter()
        .map(|f| {
            Ok(FileSwap {
                target: f.target.clone(),
                source: dir.join(&f.bundle_path),
                kind: f.kind.clone(),
                role: f.role.clone(),
                ca: f.ca.clone().unwrap_or_else(|| ca.clone()),
                mode: u32::from_str_radix(&f.mode, 8).map_err(|_| Error::Input {
                    path: dir.join("bundle.json"),
                    expected: "an octal mode".into(),
                    found: f.mode.clone(),
                })?,
                old_sha256: f.old_sha256.clone(),
                new_sha256: f.new_sha256.clone(),
                old_serial: f.old_serial.clone(),
                new_serial: f.new_serial.clone(),
                sans: f.sans.as_ref().map(|s| s.after.clone()).unwrap_or_default(),
                link: None,
            })
        })
        .collect::<Result<_>>()?;
    let cands = cands(node, profile);

    // Who uses each file.
    let users: Vec<Vec<usize>> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let explicit: Vec<usize> = (0..cands.len())
                .filter(|&c| cands[c].explicit.iter().any(|p| same(p, &f.target)))
                .collect();
            if !explicit.is_empty() {
                return explicit;
            }
            let readers: Vec<usize> = (0..cands.len())
                .filter(|&c| cands[c].node.is_some_and(|n| n.reads(&f.target)))
                .collect();
            if !readers.is_empty() {
                return readers;
            }
            (0..cands.len())
                .filter(|&c| {
                    let kind = &cands[c].kind;
                    let node_runs_it = node.iter().any(|n| &n.kind == kind);
                    cands[c].node.is_none()
                        && cands[c].explicit.is_empty()
                        && manifest.files[i].components.contains(kind)
                        && (overrides.profile_given || !node_runs_it)
                })
                .take(1)
                .collect()
        })
        .collect();

    // Overrides must name a component that takes part (or that --restart brings in).
    let known: Vec<&str> = cands.iter().map(|c| c.name.as_str()).collect();
    for r in &overrides.restart {
        if !known.contains(&r.as_str()) {
            return Err(crate::rollout::Error::UnknownRestart {
                name: r.clone(),
                known: known.iter().map(|k| k.to_string()).collect(),
            }
            .into());
        }
    }
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by_key(|&c| (rank(&cands[c].kind), c));
    let mut taken = vec![false; files.len()];
    let mut steps = Vec::new();
    let mut in_plan: Vec<String> = Vec::new();
    let mut found: Vec<String> = Vec::new();
    for c in order {
        let cand = &cands[c];
        let mine: Vec<usize> = (0..files.len())
            .filter(|&i| users[i].contains(&c))
            .collect();
        // --restart NAME brings in one component: the node's own before a profile's.
        let forced = overrides.restart.contains(&cand.name) && !in_plan.contains(&cand.name);
        if mine.is_empty() && !forced {
            continue;
        }
        let swap: Vec<usize> = mine.iter().copied().filter(|&i| !taken[i]).collect();
        let reads: Vec<usize> = mine.iter().copied().filter(|&i| taken[i]).collect();
        for &i in &swap {
            taken[i] = true;
        }
        // A changed unit file or drop-in takes a daemon-reload before the restart.
        let unit_changed = cand.node.is_some_and(|n| {
            mine.iter()
                .any(|&i| n.unit_files.iter().any(|u| same(u, &files[i].target)))
        });
        let restart = match &cand.restart {
            Restart::Systemd(u) if unit_changed => Restart::SystemdReload(u.clone()),
            r => r.clone(),
        };
        let restart = overrides
            .restart_cmd
            .iter()
            .rev()
            .find(|(n, _)| *n == cand.name)
            .map_or(restart, |(_, cmd)| Restart::Command(cmd.clone()));
        let (gates, note) =
            gates_for(root, cand, &mine, &files, node, overrides, read, &mut found)?;
        in_plan.push(cand.name.clone());
        steps.push(Step {
            component: cand.name.clone(),
            kind: cand.kind.clone(),
            restart: Some(restart),
            files: swap,
            reads,
            gates,
            note,
            from: cand.from.clone(),
        });
    }
    let rest: Vec<usize> = (0..files.len()).filter(|&i| !taken[i]).collect();
    if !rest.is_empty() {
        steps.push(Step {
            component: "files-only".into(),
            kind: "none".into(),
            restart: None,
            files: rest,
            reads: vec![],
            gates: vec![],
            note: Some(
                "read by no component of this node (another node's copy, or a file for kubectl): swapped, nothing restarted"
                    .into(),
            ),
            from: String::new(),
        });
    }
    let named = overrides
        .restart_cmd
        .iter()
        .map(|(n, _)| ("--restart-cmd", n))
        .chain(overrides.health.iter().map(|(n, _)| ("--health", n)))
        .chain(overrides.health_ca.iter().map(|(n, _)| ("--health-ca", n)))
        .chain(
            overrides
                .health_cert
                .iter()
                .map(|(n, _)| ("--health-cert", n)),
        )
        .chain(
            overrides
                .health_key
                .iter()
                .map(|(n, _)| ("--health-key", n)),
        );
    for (flag, n) in named {
        if overrides.etcd_membership && n == "etcd" && flag != "--restart-cmd" {
            continue;
        }
        if !in_plan.contains(n) {
            return Err(crate::rollout::Error::NotRestarted {
                flag: flag.to_string(),
                name: n.to_string(),
                restarts: in_plan.clone(),
            }
            .into());
        }
    }
    let name = if node.is_empty() {
        profile.name.clone()
    } else {
        format!("node (+ profile {})", profile.name)
    };
    // A client identity given on the command line replaces a derived one that was missing.
    found.retain(|p| {
        let comp = p.split(':').next().unwrap_or("");
        !overrides.health_cert.iter().any(|(n, _)| n == comp)
    });
    Ok((
        Plan {
            bundle: dir,
            ca,
            profile: name,
            files,
            steps,
            etcd: None,
        },
        found,
    ))
}

pub(super) fn first_cert(bytes: &[u8]) -> Option<CertInfo> {
    decode(Path::new(""), bytes)
        .items
        .into_iter()
        .find_map(|i| match i {
            Item::Cert { index: 0, info } => Some(*info),
            _ => None,
        })
}
