//! `certs change`: reads the node, works out every file a VIP add or move, a retirement or a new
//! master touches ([`crate::change`]), reissues the certificates, edits the kubeconfigs and the
//! configuration that names masters ([`crate::edit`]), and writes ONE bundle that
//! `certs rollout` installs; prints what changes and the rollout plan; `--apply` installs it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::args::{ChangeArgs, ResultOutput};
use super::config::ChangeConfig;
use super::outcome::Outcome;
use crate::change::{self, CertEdit, Endpoint, Request, Retired, ServerMove};
use crate::edit::bundle::{Change as EditChange, Edited, NewFile};
use crate::error::{Error, Result};
use crate::issue::reissue::{reissue, Action, ReissueRequest};
use crate::node::Component;
use crate::pki::inventory::Inventory;
use crate::pki::Role;
use crate::spec::san::SanEdit;

/// Extra places a change reads kubeconfigs from, besides the standard PKI locations.
const KUBECONFIGS: &[&str] = &["/root/.kube/config"];

pub fn run(c: &ChangeConfig) -> Result<Outcome> {
    let (a, root, now) = (&c.args, c.root.clone(), c.now);
    let req = request(a)?;
    something_asked(
        req.vip.is_some(),
        &[
            req.retire.len(),
            req.add_master.len(),
            req.add_san.len(),
            req.drop_san.len(),
        ],
    )?;
    let node = crate::sys::node::read(&root);
    let inv = scan(a, &root, now, c.home.as_deref())?;
    let proxies = proxy_configs(&node);
    let masters = change::masters(&node, &proxies);
    let retired = change::resolve_retired(&req.retire, &masters)?;
    let kept = masters
        .iter()
        .filter(|m| !retired.iter().any(|r| r.is(&m.addr)))
        .count();
    if !retired.is_empty() && kept == 0 && !masters.is_empty() {
        return Err(Error::Usage(format!(
            "--retire: expected at least one master to stay, found every master this node names retired ({})",
            masters.iter().map(|m| m.addr.clone()).collect::<Vec<_>>().join(", ")
        )));
    }
    let edits = change::cert_edits(&inv, &req, &retired, &masters);
    let moves = change::server_moves(&inv, &node, &req, &retired, &masters);
    let mut edited = kubeconfig_edits(&inv, &moves)?;
    edited.extend(config_edits(&node, &proxies, &req, &retired)?);
    let membership: Vec<String> = retired
        .iter()
        .flat_map(|r| {
            r.names
                .first()
                .cloned()
                .or_else(|| r.addrs.first().cloned())
        })
        .collect();
    let runs_etcd = node.iter().any(|c| c.kind == "etcd");

    let (mut cert_files, ca) = reissue_all(a, &inv, &edits, now)?;
    let (new_identities, joined) = new_identities(a, &inv, &req, &retired, now)?;
    cert_files.extend(new_identities);
    let membership_step = runs_etcd && !membership.is_empty();
    if cert_files.is_empty() && edited.is_empty() && !membership_step {
        say(
            a.output,
            &json!({"schema": "certs.change/v1", "changed": false}),
            "nothing to change: no file on this node names what the change moves",
        )?;
        return Ok(Outcome::Clean);
    }
    let mut files: Vec<NewFile> = crate::edit::bundle::placed(cert_files, &[])?;
    let taken: Vec<PathBuf> = files.iter().map(|f| f.bundle_path.clone()).collect();
    files.extend(crate::edit::bundle::edited_files(&edited, &taken));
    let mut manifest = crate::edit::bundle::manifest(&crate::duration::rfc3339(now), ca, &files);
    if runs_etcd && !membership.is_empty() {
        manifest["etcd_membership"] = json!({"remove": membership});
    }
    // The targets are absolute paths under --root: a rollout with another --root re-roots them.
    manifest["root"] = json!(root);
    // Preflight against the node as it will be after the bundle: a problem the change fixes
    // does not fail it; anything still failing refuses the change (unless --force).
    let overlay: std::collections::HashMap<PathBuf, Vec<u8>> = files
        .iter()
        .map(|f| (PathBuf::from(f.target()), f.contents.clone()))
        .collect();
    let preflight = c.preflight()?;
    let verdict = crate::sys::fs::overlay::with(overlay, || super::preflight::run(&preflight))?;
    if verdict != Outcome::Clean && !a.force {
        eprintln!(
            "certs: error: preflight still fails on the node as the change would leave it (above); nothing was written (--force writes the bundle anyway)"
        );
        return Ok(Outcome::Problem);
    }
    let out = a.out.clone().unwrap_or_else(|| {
        let stamp = crate::duration::rfc3339(now).replace([':', '-'], "");
        PathBuf::from(format!("certs-change-{stamp}"))
    });
    let out = std::path::absolute(&out).unwrap_or(out);
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Usage(e.to_string()))?;
    let written: Vec<(PathBuf, u32, Vec<u8>)> = files
        .iter()
        .map(|f| (f.bundle_path.clone(), f.mode, f.contents.clone()))
        .collect();

    // The rollout, as `certs rollout apply BUNDLE --root ROOT [options]` would be typed.
    let mut argv: Vec<String> = vec![
        "certs".into(),
        "rollout".into(),
        "apply".into(),
        out.display().to_string(),
        "--root".into(),
        root.display().to_string(),
        "--state-dir".into(),
        a.run.state.state_dir.display().to_string(),
        "--health-timeout".into(),
        a.run.health_timeout.clone(),
        "--health-interval".into(),
        a.run.health_interval.clone(),
        "--restart-timeout".into(),
        a.run.restart_timeout.clone(),
        "--park".into(),
        a.run.park.clone(),
    ];
    for r in &a.restart_cmd {
        argv.extend(["--restart-cmd".to_string(), r.clone()]);
    }
    for h in &a.health {
        argv.extend(["--health".to_string(), h.clone()]);
    }
    if a.output == ResultOutput::Json {
        argv.extend(["-o".to_string(), "json".into()]);
    }
    if a.offline {
        // The membership steps read the live member list: offline, the plan leaves them out.
        argv.push("--no-etcd-membership".into());
    }
    let apply = rollout_command(&argv)?;
    argv.push("--dry-run".into());
    let dry_run = rollout_command(&argv)?;
    summary(a, &inv, &edits, &moves, &edited, &retired, &manifest, &out)?;
    if !joined.is_empty() && a.output == ResultOutput::Text {
        let mut o = std::io::stdout().lock();
        writeln!(
            o,
            "new identities (issued like an existing master's, new keys):"
        )
        .map_err(Error::Output)?;
        for l in &joined {
            writeln!(o, "{l}").map_err(Error::Output)?;
        }
    }
    // The plan, proved on the bundle before it exists on disk (its files are read from memory):
    // a plan that cannot pass writes nothing.
    let mut in_memory: std::collections::HashMap<PathBuf, Vec<u8>> = written
        .iter()
        .map(|(rel, _, bytes)| (out.join(rel), bytes.clone()))
        .collect();
    in_memory.insert(out.join("bundle.json"), bytes.clone());
    let planned = crate::sys::fs::overlay::with(in_memory, || {
        super::config::rollout(dry_run).and_then(|c| super::rollout::run(&c))
    });
    match planned {
        Err(e @ (Error::Refused { .. } | Error::Usage(_))) if !a.force => {
            eprintln!("certs: the rollout plan cannot pass; nothing was written (--force writes the bundle anyway)");
            return Err(e);
        }
        Err(e) => {
            crate::sys::fs::write_bundle(&out, &written, &bytes)?;
            return Err(e);
        }
        Ok(_) => {}
    }
    crate::sys::fs::write_bundle(&out, &written, &bytes)?;
    if a.apply {
        super::rollout::run(&super::config::rollout(apply)?)
    } else {
        Ok(Outcome::Clean)
    }
}

/// `certs rollout …` parsed from its command line (so the options mean what they mean there).
fn rollout_command(argv: &[String]) -> Result<super::args::RolloutCommand> {
    let parsed = <super::args::Args as clap::Parser>::try_parse_from(argv)
        .map_err(|e| Error::Usage(format!("the rollout options: {e}")))?;
    match parsed.command {
        super::args::Command::Rollout(r) => Ok(r),
        _ => Err(Error::Usage(
            "the rollout options did not parse as `rollout apply`".into(),
        )),
    }
}

/// A new master's own certificates where the node keeps one per master (kubespray/kubean's
/// `member-node1.pem`, `admin-node1.pem`, `node-node1.pem`): made like the first master's
/// (`certs issue --like`), the CN's node name replaced, a new key, the shared SANs as the
/// others will have them. Returns the bundle entries and a line per new identity.
fn new_identities(
    a: &ChangeArgs,
    inv: &Inventory,
    req: &Request,
    retired: &[Retired],
    now: i64,
) -> Result<(BundleEntries, Vec<String>)> {
    let mut files = Vec::new();
    let mut lines = Vec::new();
    for (name, addr) in &req.add_master {
        let family = name.trim_end_matches(|c: char| c.is_ascii_digit());
        if family.len() == name.len() {
            continue;
        }
        // Per-master files: `<prefix>-<family><digits>.pem` whose CN ends with that node name.
        let mut templates: Vec<(String, String, PathBuf, String)> = Vec::new();
        for c in &inv.certificates {
            if c.location.embedded.is_some() || c.info.is_ca {
                continue;
            }
            let path = &c.location.path;
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let Some((prefix, node)) = stem.rsplit_once('-') else {
                continue;
            };
            let sibling = node
                .strip_prefix(family)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
            let cn = c.info.common_name.clone().unwrap_or_default();
            if !sibling || node == name || !cn.ends_with(node) {
                continue;
            }
            match templates.iter_mut().find(|t| t.0 == prefix) {
                Some(t) if node < t.1.as_str() => {
                    *t = (prefix.into(), node.into(), path.clone(), cn)
                }
                Some(_) => {}
                None => templates.push((prefix.into(), node.into(), path.clone(), cn)),
            }
        }
        for (prefix, node, template, cn) in templates {
            let target = template.with_file_name(format!("{prefix}-{name}.pem"));
            if crate::sys::fs::exists(&target) {
                continue;
            }
            // The SANs the shared certificates will have: the new master in, the retired out.
            let mut add = vec![Endpoint {
                host: addr.clone(),
                port: 0,
            }
            .san()];
            let have: Vec<String> = inv
                .certificates
                .iter()
                .find(|c| c.location.path == template)
                .map(|c| crate::rollout::resolve::sans_of(&c.info))
                .unwrap_or_default();
            if have.iter().any(|s| s == &format!("DNS:{node}")) {
                add.push(format!("DNS:{name}"));
            }
            let drop: Vec<String> = retired
                .iter()
                .flat_map(|r| r.sans())
                .filter(|s| have.contains(s))
                .collect();
            let edit = SanEdit::parse(&add, &drop)?;
            let new_cn = format!("{}{name}", &cn[..cn.len() - node.len()]);
            let like = crate::issue::like::issue_like(&crate::issue::like::LikeRequest {
                template: &template,
                cn: &new_cn,
                edit: &edit,
                name: None,
                ca: a.ca.as_deref().zip(a.ca_key.as_deref()),
                key_algo: None,
                validity: None,
                now,
            })?;
            lines.push(format!(
                "  {}  CN {new_cn}, made like {} (new key)",
                like.cert_target.display(),
                template.display()
            ));
            for f in like.manifest.files {
                let v = serde_json::to_value(&f).map_err(|e| Error::Usage(e.to_string()))?;
                files.push((v, f.contents));
            }
        }
    }
    Ok((files, lines))
}

pub(crate) fn request(a: &ChangeArgs) -> Result<Request> {
    let ep = |flag: &str, v: &Option<String>| -> Result<Option<Endpoint>> {
        v.as_deref()
            .map(|t| Endpoint::parse(t).map_err(|e| Error::Usage(format!("{flag}: {e}"))))
            .transpose()
    };
    let add_master = a
        .spec
        .add_master
        .iter()
        .map(|s| {
            let (n, addr) = s
                .split_once('=')
                .filter(|(n, a)| !n.is_empty() && !a.is_empty())
                .ok_or_else(|| {
                    Error::Usage(format!("--add-master: expected NAME=ADDR, found `{s}`"))
                })?;
            Endpoint::parse(addr).map_err(|e| Error::Usage(format!("--add-master {n}: {e}")))?;
            Ok((n.to_string(), addr.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    // The SAN edits must parse like reissue's.
    SanEdit::parse(&a.spec.add_san, &a.spec.drop_san)?;
    Ok(Request {
        vip: ep("--vip", &a.spec.vip)?,
        old_vip: ep("--old-vip", &a.spec.old_vip)?,
        retire: a.spec.retire.clone(),
        add_master,
        add_san: a.spec.add_san.clone(),
        drop_san: a.spec.drop_san.clone(),
    })
}

/// The node's PKI and kubeconfigs: the paths given, or the standard locations plus the admin
/// kubeconfigs (`/root/.kube/config`, `$HOME/.kube/config`) under --root.
fn scan(a: &ChangeArgs, root: &Path, now: i64, home: Option<&str>) -> Result<Inventory> {
    let paths = if a.paths.is_empty() {
        let mut p = crate::pki::scan::resolve_paths(&[], root)?;
        let home = home.map(|h| format!("{h}/.kube/config"));
        for extra in KUBECONFIGS.iter().map(|s| s.to_string()).chain(home) {
            let path = crate::sys::fs::under_root(root, Path::new(&extra));
            if crate::sys::fs::is_file(&path) && !p.contains(&path) {
                p.push(path);
            }
        }
        p
    } else {
        a.paths.clone()
    };
    crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
        paths: &paths,
        root,
        now,
        warn_within: 0,
    })
}

/// The node-local proxies' config files (nginx, haproxy) with their text.
pub(crate) fn proxy_configs(node: &[Component]) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for c in node.iter().filter(|c| c.kind == "node-local-lb") {
        for f in &c.files {
            let Some(text) = crate::sys::fs::read_opt(f).and_then(|b| String::from_utf8(b).ok())
            else {
                continue;
            };
            let is_config = !crate::edit::proxy::servers(&text).is_empty();
            if is_config && !out.iter().any(|(p, _)| p == f) {
                out.push((f.clone(), text));
            }
        }
    }
    out
}

fn mode_of(path: &Path, default: u32) -> u32 {
    crate::sys::fs::mode(path).unwrap_or(default) & 0o7777
}

/// Kubeconfigs moved to their new server, one edit per cluster, every other byte kept.
pub(crate) fn kubeconfig_edits(inv: &Inventory, moves: &[ServerMove]) -> Result<Vec<Edited>> {
    let _ = inv;
    let mut out: Vec<Edited> = Vec::new();
    for m in moves {
        let i = match out.iter().position(|e| e.target == m.path) {
            Some(i) => i,
            None => {
                let old = crate::sys::fs::read_file(&m.path)?;
                out.push(Edited {
                    target: std::path::absolute(&m.path).unwrap_or(m.path.clone()),
                    kind: "kubeconfig",
                    role: Role::Unknown,
                    components: vec![],
                    mode: mode_of(&m.path, 0o600),
                    new: old.clone(),
                    old,
                    changes: vec![],
                });
                out.len() - 1
            }
        };
        let text = String::from_utf8_lossy(&out[i].new).into_owned();
        let new =
            crate::edit::kubeconfig::set_server(&text, &m.to, Some(&m.cluster)).map_err(|e| {
                Error::Input {
                    path: m.path.clone(),
                    expected: "a kubeconfig whose server can be moved".into(),
                    found: e.to_string(),
                }
            })?;
        out[i].new = new.into_bytes();
        out[i].changes.push(EditChange {
            at: format!("clusters[{}].server", m.cluster),
            before: m.from.clone(),
            after: m.to.clone(),
        });
    }
    Ok(out)
}

/// Units, manifests and env files whose master lists change (`--etcd-servers`,
/// `--initial-cluster`/`ETCD_INITIAL_CLUSTER`), and the node-local proxies' server lines.
pub(crate) fn config_edits(
    node: &[Component],
    proxies: &[(PathBuf, String)],
    req: &Request,
    retired: &[Retired],
) -> Result<Vec<Edited>> {
    let retire: Vec<&str> = retired
        .iter()
        .flat_map(|r| r.addrs.iter().chain(&r.names).map(String::as_str))
        .collect();
    let mut files: Vec<PathBuf> = Vec::new();
    for c in node
        .iter()
        .filter(|c| matches!(c.kind.as_str(), "etcd" | "kube-apiserver"))
    {
        files.push(c.source.clone());
        // Environment files: every file of the component that sets an ETCD_ variable.
        for s in &c.settings {
            if let Some((file, _)) = s.from.split_once(" ETCD_") {
                let p = PathBuf::from(file);
                if !files.contains(&p) {
                    files.push(p);
                }
            }
        }
    }
    let adds_etcd: Vec<String> = req
        .add_master
        .iter()
        .map(|(_, addr)| {
            Endpoint {
                host: addr.clone(),
                port: 2379,
            }
            .url()
        })
        .collect();
    let adds_peer: Vec<(String, String)> = req
        .add_master
        .iter()
        .map(|(n, addr)| {
            (
                n.clone(),
                Endpoint {
                    host: addr.clone(),
                    port: 2380,
                }
                .url(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for f in files {
        let Some(old) = crate::sys::fs::read_opt(&f) else {
            continue;
        };
        let text = String::from_utf8_lossy(&old).into_owned();
        let mut new = text.clone();
        let mut changes = Vec::new();
        let fail = |e: crate::edit::Error| Error::Input {
            path: f.clone(),
            expected: "configuration whose master lists can be edited".into(),
            found: e.to_string(),
        };
        if let Some(t) =
            crate::edit::config::etcd_servers(&new, &retire, &adds_etcd).map_err(fail)?
        {
            changes.push(EditChange {
                at: "--etcd-servers".into(),
                before: String::new(),
                after: String::new(),
            });
            new = t;
        }
        if let Some(t) =
            crate::edit::config::initial_cluster(&new, &retire, &adds_peer).map_err(fail)?
        {
            changes.push(EditChange {
                at: "initial-cluster".into(),
                before: String::new(),
                after: String::new(),
            });
            new = t;
        }
        if new != text {
            fill(&mut changes, &text, &new);
            out.push(edited("config", &f, old, new.into_bytes(), changes));
        }
    }
    let adds_lb: Vec<String> = req
        .add_master
        .iter()
        .map(|(_, addr)| addr.clone())
        .collect();
    for (f, text) in proxies {
        let fail = |e: crate::edit::Error| Error::Input {
            path: f.clone(),
            expected: "a proxy configuration whose server lines can be edited".into(),
            found: e.to_string(),
        };
        if let Some(new) = crate::edit::proxy::upstreams(text, &retire, &adds_lb).map_err(fail)? {
            let mut changes = Vec::new();
            fill(&mut changes, text, &new);
            out.push(edited(
                "config",
                f,
                text.clone().into_bytes(),
                new.into_bytes(),
                changes,
            ));
        }
    }
    Ok(out)
}

/// The changed lines, as `line N` before/after pairs (removed and added lines too).
fn fill(changes: &mut Vec<EditChange>, old: &str, new: &str) {
    changes.clear();
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut i = 0;
    while i < a.len() && i < b.len() && a[i] == b[i] {
        i += 1;
    }
    let (mut ea, mut eb) = (a.len(), b.len());
    while ea > i && eb > i && a[ea - 1] == b[eb - 1] {
        ea -= 1;
        eb -= 1;
    }
    changes.push(EditChange {
        at: format!("line {}", i + 1),
        before: a[i..ea].join("\n"),
        after: b[i..eb].join("\n"),
    });
}

fn edited(
    kind: &'static str,
    path: &Path,
    old: Vec<u8>,
    new: Vec<u8>,
    changes: Vec<EditChange>,
) -> Edited {
    Edited {
        target: std::path::absolute(path).unwrap_or(path.to_path_buf()),
        kind,
        role: Role::Unknown,
        components: vec![],
        mode: mode_of(path, 0o644),
        old,
        new,
        changes,
    }
}

/// A reissue's bundle files as `bundle.json` entries with their bytes, added to `files`; its CA
/// becomes the bundle's CA when none is yet, or when it signed an apiserver certificate.
pub(crate) fn take_manifest(
    m: crate::issue::bundle::Manifest,
    files: &mut BundleEntries,
    ca: &mut Option<(String, String)>,
) -> Result<()> {
    if ca.is_none() || m.files.iter().any(|f| f.role == Role::Apiserver) {
        *ca = Some((m.ca.certificate.clone(), m.ca.subject.clone()));
    }
    for f in m.files {
        let v = serde_json::to_value(&f).map_err(|e| Error::Usage(e.to_string()))?;
        files.push((v, f.contents));
    }
    Ok(())
}

/// `bundle.json` entries with the new files' bytes.
pub(crate) type BundleEntries = Vec<(Value, Vec<u8>)>;
type CertFiles = (BundleEntries, Option<(String, String)>);

/// Reissues the certificates, one reissue per distinct SAN edit, keys kept. Any refusal (no CA
/// key on this node, a SAN to drop that is not there) refuses the whole change.
fn reissue_all(a: &ChangeArgs, inv: &Inventory, edits: &[CertEdit], now: i64) -> Result<CertFiles> {
    let mut groups: Vec<(Vec<String>, Vec<String>, Vec<PathBuf>)> = Vec::new();
    for e in edits {
        let path = inv.certificates[e.cert].location.path.clone();
        match groups
            .iter_mut()
            .find(|(add, drop, _)| *add == e.add && *drop == e.drop)
        {
            Some(g) => g.2.push(path),
            None => groups.push((e.add.clone(), e.drop.clone(), vec![path])),
        }
    }
    let mut files = Vec::new();
    let mut ca: Option<(String, String)> = None;
    let mut refused = Vec::new();
    for (add, drop, targets) in &groups {
        let edit = SanEdit::parse(add, drop)?;
        let r = reissue(&ReissueRequest {
            targets,
            edit: &edit,
            ca: a.ca.as_deref().zip(a.ca_key.as_deref()),
            new_key: false,
            key_algo: None,
            validity: None,
            now,
        })?;
        for o in r.outcomes.iter().filter(|o| o.action == Action::Refused) {
            refused.push(format!(
                "{}: {}",
                o.target.path.display(),
                o.reason.as_deref().unwrap_or("refused")
            ));
        }
        if let Some(m) = r.manifest {
            take_manifest(m, &mut files, &mut ca)?;
        }
    }
    if !refused.is_empty() {
        return Err(Error::Refused {
            what: "the change cannot reissue every certificate it touches; nothing was written"
                .into(),
            problems: refused,
        });
    }
    Ok((files, ca))
}

#[allow(clippy::too_many_arguments)]
fn summary(
    a: &ChangeArgs,
    inv: &Inventory,
    edits: &[CertEdit],
    moves: &[ServerMove],
    edited: &[Edited],
    retired: &[Retired],
    manifest: &Value,
    out: &Path,
) -> Result<()> {
    let mut o = std::io::stdout().lock();
    if a.output == ResultOutput::Json {
        let v = json!({
            "schema": "certs.change/v1",
            "changed": true,
            "bundle": out,
            "certificates": edits.iter().map(|e| json!({
                "target": inv.certificates[e.cert].location.path,
                "add": e.add, "drop": e.drop, "why": e.why,
            })).collect::<Vec<_>>(),
            "kubeconfigs": moves.iter().map(|m| json!({
                "target": m.path, "cluster": m.cluster, "from": m.from, "to": m.to, "why": m.why,
            })).collect::<Vec<_>>(),
            "configuration": edited.iter().filter(|e| e.kind == "config").map(|e| json!({
                "target": e.target, "edits": e.changes,
            })).collect::<Vec<_>>(),
            "etcd_membership": manifest.get("etcd_membership"),
        });
        return writeln!(o, "{v}").map_err(Error::Output);
    }
    let w = |o: &mut std::io::StdoutLock, s: String| writeln!(o, "{s}").map_err(Error::Output);
    if !edits.is_empty() {
        w(
            &mut o,
            "certificates (reissued from their CA, keys kept):".into(),
        )?;
        for e in edits {
            let mut d: Vec<String> = e.add.iter().map(|s| format!("+{s}")).collect();
            d.extend(e.drop.iter().map(|s| format!("-{s}")));
            w(
                &mut o,
                format!(
                    "  {}  {}  ({})",
                    inv.certificates[e.cert].location.path.display(),
                    d.join(" "),
                    e.why.join(", ")
                ),
            )?;
        }
    }
    if !moves.is_empty() {
        w(&mut o, "kubeconfigs (server: only):".into())?;
        for m in moves {
            w(
                &mut o,
                format!(
                    "  {}  cluster {}: {} -> {}  ({})",
                    m.path.display(),
                    m.cluster,
                    m.from,
                    m.to,
                    m.why
                ),
            )?;
        }
    }
    let configs: Vec<&Edited> = edited.iter().filter(|e| e.kind == "config").collect();
    if !configs.is_empty() {
        w(&mut o, "configuration naming masters:".into())?;
        for e in configs {
            for c in &e.changes {
                w(&mut o, format!("  {} {}:", e.target.display(), c.at))?;
                for l in c.before.lines() {
                    w(&mut o, format!("    - {}", l.trim()))?;
                }
                for l in c.after.lines() {
                    w(&mut o, format!("    + {}", l.trim()))?;
                }
            }
        }
    }
    if let Some(m) = manifest.get("etcd_membership") {
        let names: Vec<String> = m["remove"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        w(
            &mut o,
            format!(
                "etcd membership: remove {} (snapshot first, leader moved off, one at a time)",
                names.join(", ")
            ),
        )?;
    } else if !retired.is_empty() {
        w(&mut o, "etcd membership: no etcd runs on this node; remove the retired members from a node that runs one".into())?;
    }
    w(
        &mut o,
        format!(
            "bundle: {} ({} file(s))",
            out.display(),
            manifest["files"].as_array().map_or(0, Vec::len)
        ),
    )?;
    Ok(())
}

fn say(output: ResultOutput, v: &Value, text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match output {
        ResultOutput::Json => writeln!(o, "{v}"),
        ResultOutput::Text => writeln!(o, "{text}"),
    }
    .map_err(Error::Output)
}

/// A change (here or through `certs cluster`) must ask for something: a VIP, or a non-empty
/// `--retire`, `--add-master`, `--add-san` or `--drop-san`.
/// `counts` are how many of each list were given.
pub(super) fn something_asked(vip: bool, counts: &[usize]) -> Result<()> {
    if vip || counts.iter().any(|&n| n > 0) {
        return Ok(());
    }
    Err(Error::Usage(
        "nothing asked: give --vip, --retire, --add-master, --add-san or --drop-san".into(),
    ))
}
