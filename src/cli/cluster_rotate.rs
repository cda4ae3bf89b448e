//! `certs cluster rotate-ca STAGE`: renders the playbook that runs one `certs rotate-ca` stage on
//! every node of an inventory ([`crate::cluster::rotate`]), and the two steps only that playbook
//! runs on the CA host: `rotate-ca-new-ca` (the new CA, made there once by `trust`, its key never
//! leaving it) and `rotate-ca-reissue` (a node's `switch` bundle from its export, every leaf of
//! the old CA signed with the new CA key of this host; targets as on the node, `root` `/`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::args::ResultOutput;
use super::cluster::{absolute, ca_host_cas, read_export, remap};
use super::rotate::{read_cas, switch, trust, SwitchArgs};
use crate::cli::Outcome;
use crate::cluster::rotate::{self as plan, Stage};
use crate::error::{Error, Result};
use crate::pki::cert::CertInfo;

/// A stage as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StageArg {
    /// Every node's trust anchors get the new CA (made on the CA host once, or --new-ca)
    Trust,
    /// Every leaf of the old CA signed again by the new CA, on the CA host, node by node
    Switch,
    /// The old CA dropped everywhere, once no node has a leaf of it
    Finish,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # keep a copy of the CA being replaced (here kubespray's etcd CA), then one stage per run
  cp /etc/ssl/etcd/ssl/ca.pem old-etcd-ca.pem
  certs cluster rotate-ca trust --inventory hosts.yaml --ca-cert old-etcd-ca.pem --out rotate-trust
  ansible-playbook -i hosts.yaml rotate-trust/playbook.yml
  certs cluster rotate-ca switch --inventory hosts.yaml --ca-cert old-etcd-ca.pem --out rotate-switch
  ansible-playbook -i hosts.yaml rotate-switch/playbook.yml
  certs cluster rotate-ca finish --inventory hosts.yaml --ca-cert old-etcd-ca.pem --out rotate-finish
  ansible-playbook -i hosts.yaml rotate-finish/playbook.yml")]
pub struct RotateArgs {
    /// The stage every node is to get
    #[arg(value_enum, value_name = "STAGE")]
    pub stage: StageArg,

    /// The Ansible inventory (INI or YAML) of a kubespray/kubean or kubeasz cluster
    #[arg(long, value_name = "FILE")]
    pub inventory: PathBuf,

    /// The CA being replaced (a copy kept before `trust`: after `finish` no node holds it);
    /// copied into the playbook directory as old-ca.pem
    #[arg(long, value_name = "FILE")]
    pub ca_cert: PathBuf,

    /// The new CA's certificate, a path on the CA host [default: the one `trust` makes there in
    /// <certs_state>/rotate-ca/new-ca]
    #[arg(long, value_name = "FILE", requires = "new_ca_key")]
    pub new_ca: Option<PathBuf>,

    /// The new CA's private key, a path on the CA host (it never leaves it)
    #[arg(long, value_name = "FILE", requires = "new_ca")]
    pub new_ca_key: Option<PathBuf>,

    /// The host holding the CA keys [default: the first control-plane host]
    #[arg(long, value_name = "HOST")]
    pub ca_host: Option<String>,

    /// The certs binary the playbook copies to every host [default: this one]
    #[arg(long, value_name = "FILE")]
    pub certs_binary: Option<PathBuf>,

    /// Directory to write the playbook, its variables, old-ca.pem and README into (new or empty)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # the rotate-ca playbook's play 1 on the CA host, for trust (later stages leave out --make)
  certs cluster rotate-ca-new-ca --ca-cert /var/lib/certs/rotate-ca/old-ca.pem \\
      --dir /var/lib/certs/rotate-ca/new-ca --make -o json")]
pub struct NewCaArgs {
    /// The CA being replaced
    #[arg(long, value_name = "FILE")]
    pub ca_cert: PathBuf,

    /// The CA host's `/`: where the old CA's key is found (the new CA's files are named and its
    /// key written like it)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Where the new CA is (made) on this host
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    /// Make the new CA when DIR holds none (the trust stage); otherwise it must be there
    #[arg(long)]
    pub make: bool,

    /// The new CA given instead: its certificate (checked to pair with --new-ca-key)
    #[arg(long, value_name = "FILE", requires = "new_ca_key")]
    pub new_ca: Option<PathBuf>,

    /// The new CA's private key
    #[arg(long, value_name = "FILE", requires = "new_ca")]
    pub new_ca_key: Option<PathBuf>,

    /// Make it as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Text lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  # the rotate-ca switch playbook's play 3 on the CA host, for node2
  certs cluster rotate-ca-reissue --export exports/node2.json --scratch scratch/node2 \\
      --out bundles/node2 --ca-cert old-ca.pem --new-ca new-ca/ca.pem --new-ca-key new-ca/ca-key.pem")]
pub struct ReissueArgs {
    /// The node's export (`certs cluster export` on the node)
    #[arg(long, value_name = "FILE")]
    pub export: PathBuf,

    /// Where the node's files are laid out while its switch is worked out (removed after)
    #[arg(long, value_name = "DIR")]
    pub scratch: PathBuf,

    /// The node's bundle directory (replaced when it holds a bundle of an earlier run)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// The CA being replaced
    #[arg(long, value_name = "FILE")]
    pub ca_cert: PathBuf,

    /// The new CA's certificate (on this host)
    #[arg(long, value_name = "FILE")]
    pub new_ca: PathBuf,

    /// The new CA's private key (on this host; it goes into no bundle of another node)
    #[arg(long, value_name = "FILE")]
    pub new_ca_key: PathBuf,

    /// Sign as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// Text lines, or one JSON document
    #[arg(short, long, value_enum, default_value_t = ResultOutput::Text)]
    pub output: ResultOutput,
}

fn now_of(given: Option<&str>) -> Result<i64> {
    super::config::now(given)
}

pub fn render(a: &RotateArgs) -> Result<Outcome> {
    let old = read_cas(&a.ca_cert)?.remove(0);
    let bytes = crate::sys::fs::read_file(&a.inventory)?;
    let inv = crate::cluster::inventory::parse(&String::from_utf8_lossy(&bytes)).map_err(|e| {
        Error::Input {
            path: a.inventory.clone(),
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
    let roles = crate::cluster::roles(
        &inv,
        &crate::cluster::Request {
            ca_host: a.ca_host.clone(),
            ..Default::default()
        },
    )
    .map_err(Error::from)?;
    let stage = match a.stage {
        StageArg::Trust => Stage::Trust,
        StageArg::Switch => Stage::Switch,
        StageArg::Finish => Stage::Finish,
    };
    // Paths on the CA host: a relative one would be resolved against this directory.
    for (flag, p) in [("--new-ca", &a.new_ca), ("--new-ca-key", &a.new_ca_key)] {
        if let Some(p) = p.as_ref().filter(|p| !p.is_absolute()) {
            return Err(Error::Usage(format!(
                "{flag}: expected an absolute path on the CA host, found `{}`",
                p.display()
            )));
        }
    }
    let new_ca = match (&a.new_ca, &a.new_ca_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    let req = plan::Request {
        stage,
        new_ca: new_ca.map(|(c, k)| (c.display().to_string(), k.display().to_string())),
        certs_binary: binary.display().to_string(),
    };
    let inv_path = absolute(&a.inventory)?;
    let files = plan::render(&inv_path.display().to_string(), &req, &roles);
    let mut written: Vec<(PathBuf, u32, Vec<u8>)> = files
        .iter()
        .map(|(n, t)| (PathBuf::from(n), 0o644, t.clone().into_bytes()))
        .collect();
    written.push((
        PathBuf::from("old-ca.pem"),
        0o644,
        crate::rotate::pem_of(&old).into_bytes(),
    ));
    crate::sys::scratch::write_new_dir(&a.out, &written)?;
    let out = absolute(&a.out)?;
    let mut o = std::io::stdout().lock();
    writeln!(o, "{}", files[2].1.trim_end()).map_err(Error::Output)?;
    writeln!(o, "old CA: {} (serial {})", old.subject, old.serial).map_err(Error::Output)?;
    writeln!(
        o,
        "written: {}/{{playbook.yml,vars.yml,old-ca.pem,README}}",
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

/// The CA host's signing file of `old` (its certificate with the key beside it), under `root`.
fn signing_file(root: &Path, old: &CertInfo, now: i64) -> Result<PathBuf> {
    ca_host_cas(root, now)?
        .into_iter()
        .find(|(_, _, info)| info.der == old.der)
        .map(|(cert, _, _)| cert)
        .ok_or_else(|| {
            Error::Usage(format!(
                "expected the key of the CA being replaced (`{}`) on the CA host under {}, found none: --ca-host names the host holding it",
                old.subject,
                root.display()
            ))
        })
}

/// The new CA an earlier run made in `dir`: the file holding a CA certificate and the one
/// holding a private key, which must pair.
fn made_earlier(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let (mut cert, mut key) = (None, None);
    for w in crate::sys::fs::walk(&[dir.to_path_buf()])? {
        if let crate::sys::fs::Walked::File { path, bytes } = w {
            let items = crate::pki::decode::decode(&path, &bytes).items;
            for i in items {
                match i {
                    crate::pki::decode::Item::Cert { info, .. } if info.is_ca => {
                        cert.get_or_insert(path.clone());
                    }
                    crate::pki::decode::Item::Key { .. } => {
                        key.get_or_insert(path.clone());
                    }
                    _ => {}
                }
            }
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => {
            crate::issue::target::explicit_ca(&c, &k)?;
            Ok((c, k))
        }
        _ => Err(Error::Input {
            path: dir.to_path_buf(),
            expected: "the new CA an earlier trust made (a CA certificate and its key)".into(),
            found: "something else".into(),
        }),
    }
}

pub fn new_ca(a: &NewCaArgs) -> Result<Outcome> {
    let now = now_of(a.now.as_deref())?;
    let root = absolute(&a.root)?;
    let dir = absolute(&a.dir)?;
    let old = read_cas(&a.ca_cert)?.remove(0);
    let (cert, key, info, changed) = match (&a.new_ca, &a.new_ca_key) {
        (Some(c), Some(k)) => {
            let ca = crate::issue::target::explicit_ca(c, k)?;
            (absolute(c)?, absolute(k)?, ca.info.clone(), false)
        }
        _ if !crate::sys::fs::is_absent(&dir) => {
            let (c, k) = made_earlier(&dir)?;
            let info = read_cas(&c)?.remove(0);
            (c, k, info, false)
        }
        _ if a.make => {
            let signing = signing_file(&root, &old, now)?;
            let (info, m) = trust::make_ca_in(&old, &signing, dir.clone(), now)?;
            trust::write_made(&m)?;
            (m.cert.0.clone(), m.key.0.clone(), info, true)
        }
        _ => {
            return Err(Error::Usage(format!(
                "expected the new CA in {} on the CA host, found none: the trust stage makes it (certs cluster rotate-ca trust), or name it with --new-ca FILE --new-ca-key FILE",
                dir.display()
            )))
        }
    };
    if info.der == old.der {
        return Err(Error::Input {
            path: cert,
            expected: "a new CA".into(),
            found: "the CA being replaced".into(),
        });
    }
    let mut o = std::io::stdout().lock();
    match a.output {
        ResultOutput::Json => writeln!(
            o,
            "{}",
            json!({
                "schema": "certs.cluster-rotate-new-ca/v1",
                "changed": changed,
                "certificate": cert,
                "key": key,
                "subject": info.subject,
                "serial": info.serial,
            })
        ),
        ResultOutput::Text => writeln!(
            o,
            "new CA: {} ({}; key {}{})",
            cert.display(),
            info.subject,
            key.display(),
            if changed { ", made now" } else { "" }
        ),
    }
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}

/// The bundle `switch` wrote under the scratch root, re-rooted: its targets and CA as they are on
/// the node, `root` `/`, written to `out`.
fn reroot(staged: &Path, scratch: &Path, out: &Path) -> Result<Vec<String>> {
    let bytes = crate::sys::fs::read_file(&staged.join("bundle.json"))?;
    let mut manifest: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Input {
        path: staged.join("bundle.json"),
        expected: "the switch stage's bundle manifest".into(),
        found: e.to_string(),
    })?;
    let mut written: Vec<(PathBuf, u32, Vec<u8>)> = Vec::new();
    for f in manifest["files"].as_array().into_iter().flatten() {
        let rel = PathBuf::from(f["bundle_path"].as_str().unwrap_or_default());
        let at = staged.join(&rel);
        let mode = crate::sys::fs::mode(&at).unwrap_or(0o644) & 0o7777;
        written.push((rel, mode, crate::sys::fs::read_file(&at)?));
    }
    remap(&mut manifest["files"], scratch);
    remap(&mut manifest["ca"], scratch);
    manifest["root"] = json!("/");
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Usage(e.to_string()))?;
    crate::sys::fs::write_bundle(out, &written, &bytes)?;
    Ok(manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["target"].as_str().map(String::from))
        .collect())
}

/// A node that keeps a CA key of its own beside the old CA (kubeadm's HA masters share
/// `ca.key`): its signing files could only switch with the new CA key copied there, which never
/// leaves the CA host. One line per such key, from what the export left out.
fn signing_keys_off_the_ca_host(
    export: &Path,
    files: &[(PathBuf, u32, Vec<u8>)],
    old: &CertInfo,
) -> Result<Vec<String>> {
    let doc: Value = serde_json::from_slice(&crate::sys::fs::read_file(export)?)
        .map_err(|e| Error::Usage(e.to_string()))?;
    let left_out: Vec<&str> = doc["left_out"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["path"].as_str())
        .collect();
    let mut out = Vec::new();
    for (rel, _, bytes) in files {
        if crate::rotate::certs_in(bytes)
            .first()
            .is_none_or(|c| c.der != old.der)
        {
            continue;
        }
        let cert = Path::new("/").join(rel);
        for key in crate::rollout::rebase::key_candidates(&cert)
            .into_iter()
            .take(2)
        {
            if left_out.iter().any(|l| Path::new(l) == key) {
                out.push(format!(
                    "`{}`: a key beside the old CA `{}` on this node; its signing files cannot switch without the new CA key, which stays on the CA host: make this node the --ca-host, or take the CA key off it first",
                    key.display(),
                    cert.display()
                ));
            }
        }
    }
    Ok(out)
}

pub fn reissue(a: &ReissueArgs) -> Result<Outcome> {
    let scratch = absolute(&a.scratch)?;
    let out = absolute(&a.out)?;
    let files = read_export(&a.export)?;
    let old = read_cas(&a.ca_cert)?.remove(0);
    let keys = signing_keys_off_the_ca_host(&a.export, &files, &old)?;
    if !keys.is_empty() {
        return Err(Error::Refused {
            what: "the node holds a key of the CA being replaced; no bundle was written".into(),
            problems: keys,
        });
    }
    crate::sys::scratch::scratch_tree(&scratch, &files)?;
    // Inside the scratch tree (removed with it), outside every place the switch reads.
    let staged = scratch.join(".certs-rotate-bundle");
    let mut said: Vec<u8> = Vec::new();
    let made = switch::run_to(
        &SwitchArgs {
            ca_cert: absolute(&a.ca_cert)?,
            paths: Vec::new(),
            root: scratch.clone(),
            new_ca: absolute(&a.new_ca)?,
            new_ca_key: absolute(&a.new_ca_key)?,
            out: staged.clone(),
            now: a.now.clone(),
            output: ResultOutput::Json,
        },
        &mut said,
    )
    .and_then(|_| {
        let v: Value = serde_json::from_slice(&said).map_err(|e| Error::Usage(e.to_string()))?;
        if v["changed"] == true {
            // An earlier run's bundle of this node goes: what is left is this run's.
            if crate::sys::fs::is_file(&out.join("bundle.json")) {
                crate::sys::fs::remove_bundle(&out)?;
            }
            reroot(&staged, &scratch, &out).map(Some)
        } else {
            Ok(None)
        }
    });
    crate::sys::scratch::remove_scratch(&scratch)?;
    let made = made?;
    if made.is_none() && crate::sys::fs::is_file(&out.join("bundle.json")) {
        crate::sys::fs::remove_bundle(&out)?;
    }
    let mut o = std::io::stdout().lock();
    match (a.output, &made) {
        (ResultOutput::Json, _) => writeln!(
            o,
            "{}",
            json!({
                "schema": "certs.cluster-rotate-reissue/v1",
                "changed": made.is_some(),
                "bundle": made.as_ref().map(|_| &out),
                "targets": made,
            })
        ),
        (ResultOutput::Text, None) => writeln!(
            o,
            "unchanged: no leaf of the old CA on this node (already switched); no bundle written"
        ),
        (ResultOutput::Text, Some(t)) => writeln!(
            o,
            "bundle: {} ({} file(s): {})",
            out.display(),
            t.len(),
            t.join(", ")
        ),
    }
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}
