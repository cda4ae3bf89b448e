//! Edited files in a bundle: a kubeconfig (or configuration file) changed in place goes into the
//! bundle `certs rollout` installs, as an entry of `certs.bundle/v1` like a reissued
//! certificate's, without what only certificates have (serials, SANs, key), and with `edits`:
//! what changed, where. Adding to an existing bundle (`--into`) first proves every file already
//! in it is the one `bundle.json` records. Pure: file reads come through a function, the caller
//! writes ([`crate::sys::fs::write_bundle`], [`crate::sys::fs::add_to_bundle`]).

use super::error::Error;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use crate::pki::cert::sha256_hex;
use crate::pki::Role;

/// One value changed in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Where, in inspect's location syntax: `clusters[kubernetes].server`.
    pub at: String,
    pub before: String,
    pub after: String,
}

/// A file edited in place, before it has a place in a bundle.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The file it replaces, absolute.
    pub target: PathBuf,
    /// `kubeconfig`, …
    pub kind: &'static str,
    pub role: Role,
    /// Who must restart to use it (when the node does not say: the rollout reads the node).
    pub components: Vec<&'static str>,
    /// The mode it is installed with.
    pub mode: u32,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
    pub changes: Vec<Change>,
}

/// A file ready to go into a bundle: where, with which mode and bytes, and its `bundle.json`
/// entry.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub bundle_path: PathBuf,
    pub mode: u32,
    pub contents: Vec<u8>,
    pub entry: Value,
}

impl NewFile {
    pub fn target(&self) -> &str {
        self.entry["target"].as_str().unwrap_or_default()
    }
}

/// Bundle files for edited files, placed beside those already `taken` in the bundle.
pub fn edited_files(edited: &[Edited], taken: &[PathBuf]) -> Vec<NewFile> {
    let targets: Vec<&Path> = edited.iter().map(|e| e.target.as_path()).collect();
    let places = place(taken, &targets);
    edited
        .iter()
        .zip(places)
        .map(|(e, bundle_path)| NewFile {
            entry: json!({
                "bundle_path": bundle_path,
                "target": e.target,
                "kind": e.kind,
                "role": e.role,
                "components": e.components,
                "mode": format!("{:04o}", e.mode),
                "old_sha256": sha256_hex(&e.old),
                "new_sha256": sha256_hex(&e.new),
                "edits": e.changes,
            }),
            bundle_path,
            mode: e.mode,
            contents: e.new.clone(),
        })
        .collect()
}

/// Bundle files for entries made elsewhere (a reissue's [`crate::issue::bundle::BundleFile`]s,
/// serialised), placed again beside those already `taken`.
pub fn placed(entries: Vec<(Value, Vec<u8>)>, taken: &[PathBuf]) -> Result<Vec<NewFile>, Error> {
    let targets: Vec<PathBuf> = entries
        .iter()
        .map(|(v, _)| PathBuf::from(v["target"].as_str().unwrap_or_default()))
        .collect();
    let refs: Vec<&Path> = targets.iter().map(PathBuf::as_path).collect();
    let places = place(taken, &refs);
    entries
        .into_iter()
        .zip(places)
        .map(|((mut entry, contents), bundle_path)| {
            let mode = entry["mode"]
                .as_str()
                .and_then(|m| u32::from_str_radix(m, 8).ok())
                .ok_or_else(|| {
                    Error::Bundle(format!("expected an octal mode, found {}", entry["mode"]))
                })?;
            entry["bundle_path"] = json!(bundle_path);
            Ok(NewFile {
                bundle_path,
                mode,
                contents,
                entry,
            })
        })
        .collect()
}

/// A new `bundle.json` holding `files`.
pub fn manifest(created: &str, ca: Option<(String, String)>, files: &[NewFile]) -> Value {
    let (certificate, subject) = ca.unwrap_or_default();
    json!({
        "schema": "certs.bundle/v1",
        "created": created,
        "ca": {"certificate": certificate, "subject": subject},
        "files": files.iter().map(|f| f.entry.clone()).collect::<Vec<_>>(),
    })
}

/// Reads the `bundle.json` of the bundle in `dir` (its bytes given) and proves the bundle
/// intact: the manifest one `certs rollout` reads, every file it lists inside the bundle and
/// with the SHA-256 it records. `read` gives a file's bytes, or `None`.
pub fn existing(
    dir: &Path,
    manifest_bytes: &[u8],
    read: &dyn Fn(&Path) -> Option<Vec<u8>>,
) -> Result<Value, Error> {
    let at = dir.join("bundle.json");
    let v: Value = serde_json::from_slice(manifest_bytes).map_err(|e| {
        Error::Bundle(format!(
            "`{}`: expected a certs bundle manifest (certs.bundle/v1), found {e}",
            at.display()
        ))
    })?;
    if v["schema"] != "certs.bundle/v1" {
        return Err(Error::Bundle(format!(
            "`{}`: expected schema certs.bundle/v1, found {}",
            at.display(),
            v["schema"]
        )));
    }
    serde_json::from_value::<crate::rollout::plan::BundleManifest>(v.clone()).map_err(|e| {
        Error::Bundle(format!(
            "`{}`: expected a manifest `certs rollout` can install, found {e}",
            at.display()
        ))
    })?;
    for f in v["files"].as_array().into_iter().flatten() {
        let rel = PathBuf::from(f["bundle_path"].as_str().unwrap_or_default());
        if !inside(&rel) {
            return Err(Error::Bundle(format!(
                "`{}`: expected bundle paths inside the bundle, found `{}`; refusing a tampered bundle",
                at.display(),
                rel.display()
            )));
        }
        let want = f["new_sha256"].as_str().unwrap_or_default();
        let path = dir.join(&rel);
        let found = read(&path).map(|b| sha256_hex(&b));
        if found.as_deref() != Some(want) {
            return Err(Error::Bundle(format!(
                "`{}`: expected the bundle file bundle.json records (SHA-256 {want}), found {}; the bundle changed since it was written, refusing to add to it",
                path.display(),
                found.map_or("no readable file".into(), |s| format!("SHA-256 {s}"))
            )));
        }
    }
    Ok(v)
}

/// The bundle paths already used in a manifest.
pub fn taken(manifest: &Value) -> Vec<PathBuf> {
    manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["bundle_path"].as_str().map(PathBuf::from))
        .collect()
}

/// Appends `files` to `manifest`; refuses a target the bundle already replaces (a bundle holds
/// one new version of a file) and a target given twice.
pub fn add(manifest: &mut Value, files: &[NewFile]) -> Result<(), Error> {
    let list = manifest["files"].as_array_mut().ok_or_else(|| {
        Error::Bundle("expected a `files` list in bundle.json, found none".into())
    })?;
    for f in files {
        let target = f.target();
        if let Some(old) = list.iter().find(|e| e["target"] == target) {
            return Err(Error::Bundle(format!(
                "expected files the bundle does not replace yet, found `{target}` already in it (as `{}`): a bundle holds one new version of a file; write the edit to a new bundle with --out",
                old["bundle_path"].as_str().unwrap_or_default()
            )));
        }
        list.push(f.entry.clone());
    }
    Ok(())
}

/// A bundle path: the shortest tail of the target's path (its file name, else with its
/// directories) that no other file of the bundle uses.
fn place(taken: &[PathBuf], targets: &[&Path]) -> Vec<PathBuf> {
    let mut used: Vec<PathBuf> = taken.to_vec();
    used.push(PathBuf::from("bundle.json"));
    let mut out = Vec::new();
    for t in targets {
        let parts: Vec<&std::ffi::OsStr> = t
            .components()
            .filter_map(|c| match c {
                Component::Normal(p) => Some(p),
                _ => None,
            })
            .collect();
        let mut chosen = (1..=parts.len())
            .map(|k| parts[parts.len() - k..].iter().collect::<PathBuf>())
            .find(|p| !used.contains(p))
            .unwrap_or_else(|| PathBuf::from("file"));
        let mut n = 2;
        let base = chosen.clone();
        while used.contains(&chosen) {
            chosen = PathBuf::from(format!("{}.{n}", base.display()));
            n += 1;
        }
        used.push(chosen.clone());
        out.push(chosen);
    }
    out
}

fn inside(rel: &Path) -> bool {
    !rel.as_os_str().is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edited(target: &str, new: &str) -> Edited {
        Edited {
            target: target.into(),
            kind: "kubeconfig",
            role: Role::Admin,
            components: vec!["kubectl"],
            mode: 0o600,
            old: b"old".to_vec(),
            new: new.as_bytes().to_vec(),
            changes: vec![Change {
                at: "clusters[kubernetes].server".into(),
                before: "https://a:6443".into(),
                after: "https://b:6443".into(),
            }],
        }
    }

    #[test]
    fn places_by_shortest_free_tail() {
        let got = place(
            &[PathBuf::from("admin.conf")],
            &[
                Path::new("/etc/kubernetes/admin.conf"),
                Path::new("/root/.kube/config"),
                Path::new("/home/u/.kube/config"),
            ],
        );
        assert_eq!(
            got,
            [
                PathBuf::from("kubernetes/admin.conf"),
                PathBuf::from("config"),
                PathBuf::from(".kube/config")
            ]
        );
    }

    #[test]
    fn entries_are_what_rollout_reads_and_a_tampered_bundle_is_refused() {
        let files = edited_files(&[edited("/etc/kubernetes/admin.conf", "new")], &[]);
        let mut m = manifest("2026-06-01T00:00:00Z", None, &files);
        let parsed: crate::rollout::plan::BundleManifest =
            serde_json::from_value(m.clone()).unwrap();
        assert_eq!(parsed.files[0].kind, "kubeconfig");
        assert_eq!(parsed.files[0].mode, "0600");
        assert!(parsed.files[0].old_serial.is_none());
        let bytes = serde_json::to_vec(&m).unwrap();
        let dir = Path::new("/b");
        let good = |p: &Path| (p == Path::new("/b/admin.conf")).then(|| b"new".to_vec());
        existing(dir, &bytes, &good).unwrap();
        let bad = |p: &Path| (p == Path::new("/b/admin.conf")).then(|| b"evil".to_vec());
        let err = existing(dir, &bytes, &bad).unwrap_err().to_string();
        assert!(err.contains("changed since"), "{err}");
        // The same target again is refused; another is added.
        let again = edited_files(&[edited("/etc/kubernetes/admin.conf", "x")], &taken(&m));
        assert!(add(&mut m, &again)
            .unwrap_err()
            .to_string()
            .contains("already in it"));
        let other = edited_files(&[edited("/etc/kubernetes/kubelet.conf", "x")], &taken(&m));
        add(&mut m, &other).unwrap();
        assert_eq!(m["files"].as_array().unwrap().len(), 2);
        // A bundle path leaving the bundle is tampering too.
        m["files"][0]["bundle_path"] = json!("../admin.conf");
        let bytes = serde_json::to_vec(&m).unwrap();
        assert!(existing(dir, &bytes, &good)
            .unwrap_err()
            .to_string()
            .contains("tampered"));
    }
}
