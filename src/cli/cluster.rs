//! `certs cluster`: renders the playbook of a cluster-wide change ([`crate::cluster`]), and the
//! two steps only the playbook runs: `export` on each node (the files a change reads, never a
//! private key) and `reissue` on the CA host (a node's bundle from its export, signed with this
//! host's CA keys, its targets as they are on the node: bundle.json `root` is `/`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::args::{ClusterExportArgs, ClusterReissueArgs, ClusterRenderArgs, ResultOutput};
use super::config::{check_change_options, ClusterConfig, ClusterReissue};
use super::outcome::Outcome;
use crate::change;
use crate::error::{Error, Result};
use crate::issue::reissue::{reissue as sign, Action, ReissueRequest};
use crate::pki::cert::CertInfo;
use crate::pki::decode::{decode, Item};
use crate::pki::inventory::Inventory;
use crate::spec::san::SanEdit;

/// The schema of `certs cluster export`'s document.
const EXPORT_SCHEMA: &str = "certs.cluster-export/v1";

pub fn run(c: &ClusterConfig) -> Result<Outcome> {
    match c {
        ClusterConfig::Render(a) => render(a),
        ClusterConfig::Export(e) => export(e),
        ClusterConfig::Reissue(r) => reissue(r),
        ClusterConfig::RotateCa(r) => super::cluster_rotate::render(r),
        ClusterConfig::RotateCaNewCa(r) => super::cluster_rotate::new_ca(r),
        ClusterConfig::RotateCaSign(r) => super::cluster_rotate::sign(r),
    }
}

pub(super) fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|source| Error::Read {
        path: p.to_path_buf(),
        source,
    })
}

fn render(a: &ClusterRenderArgs) -> Result<Outcome> {
    let inventory = a.inventory.as_ref().ok_or_else(|| {
        Error::Usage("--inventory FILE is required (or a subcommand: export, reissue)".into())
    })?;
    let out = a.out.as_ref().ok_or_else(|| {
        Error::Usage("--out DIR is required: where the playbook is written".into())
    })?;
    super::change::something_asked(
        a.vip.is_some(),
        &[
            a.retire.len(),
            a.add_master.len(),
            a.add_san.len(),
            a.drop_san.len(),
        ],
    )?;
    check_change_options(&a.vip, &a.old_vip, &a.add_master, &a.add_san, &a.drop_san)?;
    let bytes = crate::sys::fs::read_file(inventory)?;
    let inv = crate::cluster::inventory::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| {
        Error::Input {
            path: inventory.clone(),
            expected: "an Ansible inventory (INI or YAML)".into(),
            found: e.to_string(),
        }
    })?;
    let binary = match &a.certs_binary {
        Some(b) => absolute(b)?,
        None => std::env::current_exe().map_err(|source| Error::Read {
            path: PathBuf::from("/proc/self/exe"),
            source,
        })?,
    };
    let req = crate::cluster::Request {
        vip: a.vip.clone(),
        old_vip: a.old_vip.clone(),
        retire: a.retire.clone(),
        add_master: a.add_master.clone(),
        add_san: a.add_san.clone(),
        drop_san: a.drop_san.clone(),
        ca_host: a.ca_host.clone(),
        certs_binary: binary.display().to_string(),
        worker_serial: a.worker_serial,
        online: a.online,
    };
    let roles = crate::cluster::roles(&inv, &req)?;
    let inv_path = absolute(inventory)?;
    let files = crate::cluster::render(&inv_path.display().to_string(), &req, &roles);
    let written: Vec<(PathBuf, u32, Vec<u8>)> = files
        .iter()
        .map(|(n, t)| (PathBuf::from(n), 0o644, t.clone().into_bytes()))
        .collect();
    crate::sys::scratch::write_new_dir(out, &written)?;
    let out = absolute(out)?;
    let readme = &files[2].1;
    let mut o = std::io::stdout().lock();
    writeln!(o, "{}", readme.trim_end()).map_err(Error::Output)?;
    writeln!(
        o,
        "written: {}/{{playbook.yml,vars.yml,README}}",
        out.display()
    )
    .map_err(Error::Output)?;
    writeln!(
        o,
        "  cd {} && ansible-playbook -i {} playbook.yml",
        out.display(),
        inv_path.display()
    )
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}

/// What a node's export leaves out, and why.
fn secret(bytes: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("PRIVATE KEY") {
        return Some("holds a private key");
    }
    let items = decode(Path::new(""), bytes).items;
    if items.iter().any(|i| matches!(i, Item::Key { .. })) {
        return Some("holds a private key");
    }
    if items.iter().any(|i| matches!(i, Item::Kubeconfig(_)))
        && (text.contains("client-key-data") || text.contains("token:"))
    {
        return Some("a kubeconfig that embeds a client key or token");
    }
    None
}

/// The node's path of a file under `root`: `/etc/x` for `<root>/etc/x`.
fn on_node(root: &Path, path: &Path) -> Option<PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    Some(Path::new("/").join(rel))
}

fn export(a: &ClusterExportArgs) -> Result<Outcome> {
    let root = absolute(&a.root)?;
    let mut wanted: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !wanted.contains(&p) {
            wanted.push(p);
        }
    };
    // The PKI in the standard locations, and the administrators' kubeconfig.
    let pki = crate::pki::scan::resolve_paths(&[], &root).unwrap_or_default();
    let mut pki_files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for w in crate::sys::fs::walk(&pki)? {
        if let crate::sys::fs::Walked::File { path, bytes } = w {
            pki_files.push((path, bytes));
        }
    }
    let admin = crate::sys::fs::under_root(&root, Path::new("/root/.kube/config"));
    if let Some(bytes) = crate::sys::fs::read_opt(&admin) {
        pki_files.push((admin, bytes));
    }
    let mut left_out: Vec<Value> = Vec::new();
    for (path, bytes) in &pki_files {
        let items = decode(path, bytes).items;
        let useful = items
            .iter()
            .any(|i| matches!(i, Item::Cert { .. } | Item::Kubeconfig(_)));
        if useful || secret(bytes).is_some() {
            push(path.clone());
        }
    }
    // How the components run: manifests, units and drop-ins, environment files; the proxies.
    let node = crate::sys::node::read(&root);
    for c in &node {
        push(c.source.clone());
        for u in &c.unit_files {
            push(u.clone());
        }
        for s in &c.settings {
            let file = s.from.split_once(' ').map_or(s.from.as_str(), |(f, _)| f);
            let p = PathBuf::from(file);
            if p.starts_with(&root) && crate::sys::fs::is_file(&p) {
                push(p);
            }
        }
    }
    for (p, _) in super::change::proxy_configs(&node) {
        push(p);
    }
    let mut files: Vec<Value> = Vec::new();
    for p in &wanted {
        let Some(node_path) = on_node(&root, p) else {
            continue;
        };
        let Some(bytes) = crate::sys::fs::read_opt(p) else {
            continue;
        };
        if let Some(why) = secret(&bytes) {
            left_out.push(json!({"path": node_path, "why": why}));
            continue;
        }
        let mode = crate::sys::fs::mode(p).unwrap_or(0o644);
        files.push(json!({
            "path": node_path,
            "mode": format!("{mode:04o}"),
            "base64": B64.encode(&bytes),
        }));
    }
    let doc = json!({
        "schema": EXPORT_SCHEMA,
        "root": root,
        "files": files,
        "left_out": left_out,
    });
    let mut o = std::io::stdout().lock();
    writeln!(o, "{doc}").map_err(Error::Output)?;
    Ok(Outcome::Clean)
}

/// Reads an export: (path relative to the node's `/`, mode, bytes) of each file.
pub(super) fn read_export(path: &Path) -> Result<Vec<(PathBuf, u32, Vec<u8>)>> {
    let bytes = crate::sys::fs::read_file(path)?;
    let bad = |found: String| Error::Input {
        path: path.to_path_buf(),
        expected: format!("an export of `certs cluster export` ({EXPORT_SCHEMA})"),
        found,
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if v["schema"] != EXPORT_SCHEMA {
        return Err(bad(format!("schema {}", v["schema"])));
    }
    let mut out = Vec::new();
    for f in v["files"].as_array().into_iter().flatten() {
        let p = f["path"]
            .as_str()
            .ok_or_else(|| bad("a file without a path".into()))?;
        let rel = Path::new(p)
            .strip_prefix("/")
            .map_err(|_| bad(format!("a path that is not absolute: {p}")))?;
        let mode = f["mode"]
            .as_str()
            .and_then(|m| u32::from_str_radix(m, 8).ok())
            .ok_or_else(|| bad(format!("{p}: no octal mode")))?;
        let data = B64
            .decode(f["base64"].as_str().unwrap_or_default())
            .map_err(|e| bad(format!("{p}: {e}")))?;
        if secret(&data).is_some() {
            return Err(bad(format!(
                "{p}: a private key (an export never holds one)"
            )));
        }
        out.push((rel.to_path_buf(), mode, data));
    }
    Ok(out)
}

/// The CA certificates of this host with their keys: (certificate, key, what it is).
pub(super) fn ca_host_cas(root: &Path, now: i64) -> Result<Vec<(PathBuf, PathBuf, CertInfo)>> {
    let paths = crate::pki::scan::resolve_paths(&[], root)?;
    let inv = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
        paths: &paths,
        root,
        now,
        warn_within: 0,
    })?;
    Ok(inv
        .certificates
        .iter()
        .filter(|c| c.info.is_ca && c.location.embedded.is_none())
        .filter_map(|c| {
            let key = &inv.keys[c.key?];
            Some((
                c.location.path.clone(),
                key.location.path.clone(),
                c.info.clone(),
            ))
        })
        .collect())
}

/// Every string in `v` under `from/` re-written as the node's absolute path.
pub(super) fn remap(v: &mut Value, from: &Path) {
    match v {
        Value::String(s) => {
            if let Ok(rel) = Path::new(s.as_str()).strip_prefix(from) {
                *s = Path::new("/").join(rel).display().to_string();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| remap(x, from)),
        Value::Object(o) => o.values_mut().for_each(|x| remap(x, from)),
        _ => {}
    }
}

fn reissue(c: &ClusterReissue) -> Result<Outcome> {
    let (a, now) = (&c.args, c.now);
    let (ca_root, scratch, out) = (&c.ca_root, &c.scratch, &c.out);
    let files = read_export(&a.export)?;
    crate::sys::scratch::scratch_tree(scratch, &files)?;
    let made = bundle(a, ca_root, scratch, now);
    crate::sys::scratch::remove_scratch(scratch)?;
    let made = made?;
    // An earlier run's bundle of this node goes: what is left is this run's, or nothing.
    if crate::sys::fs::is_file(&out.join("bundle.json")) {
        crate::sys::fs::remove_bundle(out)?;
    }
    let mut o = std::io::stdout().lock();
    let Some((manifest, written)) = made else {
        let v = json!({"schema": "certs.cluster-reissue/v1", "changed": false, "bundle": null});
        match a.output {
            ResultOutput::Json => writeln!(o, "{v}"),
            ResultOutput::Text => writeln!(
                o,
                "nothing to change: no file of this node names what the change moves"
            ),
        }
        .map_err(Error::Output)?;
        return Ok(Outcome::Clean);
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Usage(e.to_string()))?;
    crate::sys::fs::write_bundle(out, &written, &bytes)?;
    let targets: Vec<&str> = manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["target"].as_str())
        .collect();
    match a.output {
        ResultOutput::Json => writeln!(
            o,
            "{}",
            json!({
                "schema": "certs.cluster-reissue/v1",
                "changed": true,
                "bundle": out,
                "targets": targets,
                "etcd_membership": manifest.get("etcd_membership"),
            })
        ),
        ResultOutput::Text => writeln!(
            o,
            "bundle: {} ({} file(s): {})",
            out.display(),
            targets.len(),
            targets.join(", ")
        ),
    }
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}

type Made = Option<(Value, Vec<(PathBuf, u32, Vec<u8>)>)>;

/// The node's bundle, worked out on its export laid out under `scratch` as `certs change --root
/// SCRATCH` would, each certificate signed by the CA of this host that signed it. `None`: the
/// node has nothing to change (an etcd membership change alone makes no bundle: it runs with
/// the first node's files, or was done by an earlier run).
fn bundle(a: &ClusterReissueArgs, ca_root: &Path, scratch: &Path, now: i64) -> Result<Made> {
    let mut argv: Vec<String> = vec![
        "certs".into(),
        "change".into(),
        "--root".into(),
        scratch.display().to_string(),
        "--offline".into(),
    ];
    if let Some(v) = &a.spec.vip {
        argv.extend(["--vip".into(), v.clone()]);
    }
    if let Some(v) = &a.spec.old_vip {
        argv.extend(["--old-vip".into(), v.clone()]);
    }
    for (flag, vals) in [
        ("--retire", &a.spec.retire),
        ("--add-master", &a.spec.add_master),
        ("--add-san", &a.spec.add_san),
        ("--drop-san", &a.spec.drop_san),
    ] {
        for v in vals {
            argv.extend([flag.to_string(), v.clone()]);
        }
    }
    let parsed = <super::args::Args as clap::Parser>::try_parse_from(&argv)
        .map_err(|e| Error::Usage(format!("the change options: {e}")))?;
    let super::args::Command::Change(c) = parsed.command else {
        return Err(Error::Usage("the change options did not parse".into()));
    };
    let req = super::change::request(&c)?;
    let node = crate::sys::node::read(scratch);
    let mut paths = crate::pki::scan::resolve_paths(&[], scratch).unwrap_or_default();
    let admin = crate::sys::fs::under_root(scratch, Path::new("/root/.kube/config"));
    if crate::sys::fs::is_file(&admin) {
        paths.push(admin);
    }
    if paths.is_empty() {
        // No PKI on this node (a worker): its configuration may still change.
        paths.push(scratch.join(crate::sys::scratch::MARKER));
    }
    let inv: Inventory = crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
        paths: &paths,
        root: scratch,
        now,
        warn_within: 0,
    })?;
    let proxies = super::change::proxy_configs(&node);
    let masters = change::masters(&node, &proxies);
    let retired = change::resolve_retired(&req.retire, &masters)?;
    let edits = change::cert_edits(&inv, &req, &retired, &masters);
    let moves = change::server_moves(&inv, &node, &req, &retired, &masters);
    let mut edited = super::change::kubeconfig_edits(&inv, &moves)?;
    edited.extend(super::change::config_edits(
        &node, &proxies, &req, &retired,
    )?);

    // Each certificate from the CA of this host that signed it.
    let cas = if edits.is_empty() {
        Vec::new()
    } else {
        ca_host_cas(ca_root, now)?
    };
    let mut groups: BTreeMap<(Vec<String>, Vec<String>, usize), Vec<PathBuf>> = BTreeMap::new();
    let mut refused: Vec<String> = Vec::new();
    for e in &edits {
        let cert = &inv.certificates[e.cert];
        match cas.iter().position(|(_, _, ca)| cert.info.is_signed_by(ca)) {
            Some(i) => groups
                .entry((e.add.clone(), e.drop.clone(), i))
                .or_default()
                .push(cert.location.path.clone()),
            None => refused.push(format!(
                "{}: no CA of this host ({}) with its key signed it; run the reissue on the host holding that CA key (--ca-host)",
                on_node(scratch, &cert.location.path).unwrap_or(cert.location.path.clone()).display(),
                ca_root.display()
            )),
        }
    }
    let mut cert_files: Vec<(Value, Vec<u8>)> = Vec::new();
    let mut ca: Option<(String, String)> = None;
    for ((add, drop, i), targets) in &groups {
        let edit = SanEdit::parse(add, drop)?;
        let (ca_cert, ca_key, _) = &cas[*i];
        let r = sign(&ReissueRequest {
            targets,
            edit: &edit,
            ca: Some((ca_cert.as_path(), ca_key.as_path())),
            new_key: false,
            key_algo: None,
            validity: None,
            now,
        })?;
        for o in r.outcomes.iter().filter(|o| o.action == Action::Refused) {
            refused.push(format!(
                "{}: {}",
                on_node(scratch, &o.target.path)
                    .unwrap_or(o.target.path.clone())
                    .display(),
                o.reason.as_deref().unwrap_or("refused")
            ));
        }
        if let Some(m) = r.manifest {
            super::change::take_manifest(m, &mut cert_files, &mut ca)?;
        }
    }
    if !refused.is_empty() {
        return Err(Error::Refused {
            what: "the node's change cannot reissue every certificate it touches; no bundle was written".into(),
            problems: refused,
        });
    }
    if cert_files.is_empty() && edited.is_empty() {
        return Ok(None);
    }
    let mut files = crate::edit::bundle::placed(cert_files, &[])?;
    let taken: Vec<PathBuf> = files.iter().map(|f| f.bundle_path.clone()).collect();
    files.extend(crate::edit::bundle::edited_files(&edited, &taken));
    let mut manifest = crate::edit::bundle::manifest(&crate::duration::rfc3339(now), ca, &files);
    // Targets as they are on the node; the CA files as the node has them (the same path as on
    // this host: the layout is the cluster's).
    remap(&mut manifest["files"], scratch);
    if ca_root != Path::new("/") {
        for f in manifest["files"].as_array_mut().into_iter().flatten() {
            remap(&mut f["ca"], ca_root);
        }
        remap(&mut manifest["ca"]["certificate"], ca_root);
    }
    let membership: Vec<String> = retired
        .iter()
        .filter_map(|r| r.names.first().or_else(|| r.addrs.first()).cloned())
        .collect();
    let runs_etcd = node.iter().any(|c| c.kind == "etcd");
    if runs_etcd && !membership.is_empty() && !a.no_etcd_membership {
        manifest["etcd_membership"] = json!({"remove": membership});
    }
    manifest["root"] = json!("/");
    let written = files
        .iter()
        .map(|f| (f.bundle_path.clone(), f.mode, f.contents.clone()))
        .collect();
    Ok(Some((manifest, written)))
}
