//! `certs cluster rotate-ca STAGE`: renders the playbook that runs one `certs rotate-ca` stage on
//! every node of an inventory ([`crate::cluster::rotate`]), and the two steps only that playbook
//! runs on the CA host: `rotate-ca-new-ca` (the new CA, made there once by `trust`; its key goes
//! only to nodes that held the old CA's key) and `rotate-ca-sign` (a node's leaves of the old
//! CA, certificates only, signed again with the new CA key of this host; the node splices them
//! into its own files with `certs rotate-ca switch --signed`).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::ResultOutput;
use super::cluster::{absolute, ca_host_cas};
use super::rotate::{read_cas, trust};
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

    /// The new CA's private key, a path on the CA host (copied at switch only to nodes that
    /// hold the old CA's key, never to others)
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
  # the rotate-ca switch playbook's play 3 on the CA host, for node2's leaves
  certs cluster rotate-ca-sign --leaves leaves/node2.pem --ca-cert old-ca.pem \\
      --new-ca new-ca/ca.pem --new-ca-key new-ca/ca-key.pem --out signed/node2.pem")]
pub struct SignArgs {
    /// A node's leaves of the old CA: PEM certificates (`certs rotate-ca leaves` there), no key
    #[arg(long, value_name = "FILE")]
    pub leaves: PathBuf,

    /// The CA being replaced
    #[arg(long, value_name = "FILE")]
    pub ca_cert: PathBuf,

    /// The new CA's certificate (on this host)
    #[arg(long, value_name = "FILE")]
    pub new_ca: PathBuf,

    /// The new CA's private key (on this host; only certificates come out)
    #[arg(long, value_name = "FILE")]
    pub new_ca_key: PathBuf,

    /// Write the signed certificates (PEM) here [default: only on stdout]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Sign as of this instant (RFC 3339) instead of now
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,

    /// The signed certificates as PEM, or one JSON document holding them
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

/// `certs cluster rotate-ca-sign`: a node's leaves of the old CA (their certificates, from
/// `certs rotate-ca leaves` there) signed again by the new CA of this host, subject, SANs, usages
/// and public key kept; the node splices them into its own files (`certs rotate-ca switch
/// --signed`). Refused, nothing written, when any given certificate is not a leaf of the old CA.
pub fn sign(a: &SignArgs) -> Result<Outcome> {
    let now = now_of(a.now.as_deref())?;
    let new = crate::issue::target::explicit_ca(&a.new_ca, &a.new_ca_key)?
        .info
        .clone();
    let key = super::rotate::switch::signing_key(&a.new_ca_key)?;
    let old = read_cas(&a.ca_cert)?.remove(0);
    let given = crate::rotate::certs_in(&crate::sys::fs::read_file(&a.leaves)?);
    let mut problems = Vec::new();
    let mut pem = String::new();
    let mut lines = Vec::new();
    for (i, c) in given.iter().enumerate() {
        let at = format!("{} #{} (`{}`)", a.leaves.display(), i + 1, c.subject);
        if c.is_ca || !c.is_signed_by(&old) {
            problems.push(format!(
                "{at}: expected a leaf of the CA being replaced (`{}`), found {}",
                old.subject,
                if c.is_ca {
                    "a CA certificate".to_string()
                } else {
                    format!("one issued by `{}`", c.issuer)
                }
            ));
            continue;
        }
        match crate::rotate::switch::reissue(&at, c, &new, &key, now) {
            Ok(issued) => {
                pem.push_str(&crate::rotate::pem_of(&issued.info));
                lines.push(json!({"subject": c.subject, "serial": c.serial,
                    "new_serial": issued.info.serial, "warnings": issued.warnings}));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Refused {
            what: "the given certificates cannot all be signed by the new CA; nothing was written"
                .into(),
            problems,
        });
    }
    if let Some(out) = &a.out {
        crate::sys::fs::write_atomic(out, pem.as_bytes(), 0o644)?;
    }
    let mut o = std::io::stdout().lock();
    match a.output {
        ResultOutput::Json => writeln!(
            o,
            "{}",
            json!({
                "schema": "certs.cluster-rotate-sign/v1",
                "changed": !lines.is_empty(),
                "signed": lines,
                "certificates": pem,
            })
        ),
        ResultOutput::Text if a.out.is_some() => writeln!(
            o,
            "{} certificate(s) signed by `{}`",
            lines.len(),
            new.subject
        ),
        ResultOutput::Text => write!(o, "{pem}"),
    }
    .map_err(Error::Output)?;
    Ok(Outcome::Clean)
}
