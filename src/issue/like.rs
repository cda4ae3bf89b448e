//! `certs issue --like`: a certificate for a NEW identity, made like an existing one — kubespray
//! or kubean scaling up needs `member-node4.pem` (CN `etcd-member-node4`) made as
//! `member-node1.pem` was. The template's Subject with only its CN value replaced (every other
//! attribute, the attribute order and the string types byte for byte), its SANs with the edit
//! applied, its key usages, extended key usages and other extensions, a new key of its algorithm
//! and size in the format of the key beside it, signed by its CA and verified. Nothing is
//! written here: the result is a bundle (`certs.bundle/v1`) whose files install beside the
//! template, as new files (`old_sha256` empty).

use super::error::Error as IssueError;
use std::path::{Path, PathBuf};

use super::bundle::{self, BundleFile, CaRef, Manifest, SanDiff};
use super::der;
use super::target::{self, Reissuable, Scans};
use super::{sign_as, Issued, KeyPolicy, Request};
use crate::error::{Error, Result};
use crate::pki::cert::{sha256_hex, CertInfo};
use crate::pki::key::{KeyAlgo, KeyFormat};
use crate::spec::san::{self, EditOutcome, SanEdit};

/// id-at-commonName, 2.5.4.3.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

pub struct LikeRequest<'a> {
    /// The certificate to copy.
    pub template: &'a Path,
    /// The new identity's common name.
    pub cn: &'a str,
    pub edit: &'a SanEdit,
    /// The new certificate's file name (beside the template); default: derived from the
    /// template's name and the CN change.
    pub name: Option<&'a str>,
    /// Explicit CA certificate and key; otherwise found beside the template as reissue finds it.
    pub ca: Option<(&'a Path, &'a Path)>,
    /// Default: the template's algorithm and size.
    pub key_algo: Option<KeyAlgo>,
    /// Seconds; default: the template's validity period.
    pub validity: Option<i64>,
    pub now: i64,
}

/// The new certificate and key, verified, with the bundle that installs them.
pub struct Like {
    pub template: Reissuable,
    /// The CA that signed it: location (absolute), subject.
    pub ca: (String, String),
    pub edit: EditOutcome,
    pub diff: SanDiff,
    pub issued: Issued,
    /// The format the new key is written in, and why (`as <file>` or a fallback).
    pub key_format: KeyFormat,
    pub key_format_from: String,
    /// Where the new certificate and key would be installed.
    pub cert_target: PathBuf,
    pub key_target: PathBuf,
    pub warnings: Vec<String>,
    pub manifest: Manifest,
}

/// Makes the certificate and key (nothing is written). Any problem is one line,
/// [`Error::Usage`] or a read error, before anything would be written.
pub fn issue_like(req: &LikeRequest) -> Result<Like> {
    let usage = |m: String| Error::Usage(m);
    check_cn(req.cn).map_err(|e| usage(e.to_string()))?;
    let t = template(req.template)?;
    let at = t.path.display().to_string();
    if t.info.is_ca {
        return Err(Error::Usage(format!(
            "`{at}`: expected a leaf certificate as the template, found a CA ({}); a new CA is not made like another",
            t.info.subject
        )));
    }
    let old_cn = t.info.common_name.clone().unwrap_or_default();
    if old_cn == req.cn {
        return Err(Error::Usage(format!(
            "--cn {}: that is the template's own identity; to reissue it, run `certs reissue {at} --new-key`",
            req.cn
        )));
    }
    let (subject, mut warnings) =
        replace_cn(&t.info.subject_raw, req.cn).map_err(|e| usage(format!("`{at}`: {e}")))?;

    // SANs: the template's with the edit applied.
    if let Some(both) = req.edit.add.iter().find(|s| req.edit.drop.contains(s)) {
        return Err(Error::Usage(format!(
            "--add-san and --drop-san both name {both}: say one of them"
        )));
    }
    let current = san::from_cert(&t.info.sans).map_err(|e| {
        usage(format!(
            "`{at}`: expected a template whose SANs can be edited, found {e}"
        ))
    })?;
    let edit = san::apply(&current, req.edit, t.info.serves_tls())
        .map_err(|e| usage(format!("`{at}`: {e}")))?;
    for s in &edit.already_present {
        warnings.push(format!("--add-san {s}: the template already carries it"));
    }
    let diff = SanDiff::new(&current, &edit);

    // Where the new files go, and the format of the new key.
    let algo = req.key_algo.clone().unwrap_or_else(|| t.info.key.clone());
    let mut scans = Scans::new(req.now);
    let template_key = template_key(&t, &mut scans)?;
    let dir = t.path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let cert_name = match req.name {
        Some(n) => checked_name(n)
            .map_err(|e| usage(e.to_string()))?
            .to_string(),
        None => derived_name(&t.path, &old_cn, req.cn).map_err(|e| usage(e.to_string()))?,
    };
    let cert_target = dir.join(&cert_name);
    let (key_format, key_format_from) = new_key_format(template_key.as_ref(), &algo);
    let key_target = match &template_key {
        Some((path, _)) => {
            let key_dir = path.parent().unwrap_or(&dir);
            key_dir.join(key_name(&t.path, Some(path), &cert_name, &old_cn, req.cn))
        }
        None => dir.join(key_name(&t.path, None, &cert_name, &old_cn, req.cn)),
    };
    if key_target == cert_target {
        return Err(Error::Usage(format!(
            "the new certificate and key would both be `{}`; pass --name with a certificate file name",
            cert_target.display()
        )));
    }
    for (what, p) in [("certificate", &cert_target), ("key", &key_target)] {
        if !crate::sys::fs::is_absent(p) {
            return Err(Error::Usage(format!(
                "`{}` already exists: the new {what} would replace it; `certs issue` only makes files for a new identity (pass --name for another file name, or `certs reissue` to replace a certificate)",
                p.display()
            )));
        }
    }

    // The CA: given, or the one beside the template whose signature verifies it.
    let ca = match req.ca {
        Some((cert, key)) => target::explicit_ca(cert, key)?,
        None => target::discover_ca(&t, &mut scans)?,
    };
    let request = Request {
        original: &t.info,
        sans: &edit.sans,
        policy: KeyPolicy::New(algo),
        validity: req.validity,
        now: req.now,
    };
    let issued = sign_as(&ca, &request, Some(&subject)).map_err(|e| usage(e.to_string()))?;
    check_subject(&issued.info, &t.info, req.cn)
        .map_err(|e| usage(format!("refusing to write: the new certificate {e}")))?;
    let new_key = issued
        .new_key
        .as_ref()
        .ok_or_else(|| usage("no new key was made".into()))?;
    warnings.extend(issued.warnings.iter().cloned());

    // The bundle: two new files, installed beside the template.
    let ca_location = std::path::absolute(&ca.location)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| ca.location.clone());
    let base = bundle::common_ancestor(&[
        cert_target.parent().unwrap_or(&dir).to_path_buf(),
        key_target.parent().unwrap_or(&dir).to_path_buf(),
    ]);
    let relative = |p: &Path| p.strip_prefix(&base).unwrap_or(p).to_path_buf();
    let cert_bytes = new_cert_file(&t.bytes, &issued.der);
    let key_pem = new_key
        .to_pem(key_format)
        .map_err(|e| usage(e.to_string()))?
        .replace("\r\n", "\n");
    let role = crate::pki::role::detect(&cert_target, &issued.info);
    let cert_file = BundleFile {
        bundle_path: relative(&cert_target),
        target: cert_target.clone(),
        kind: "certificate",
        role,
        // Nothing on this node reads a new identity's files yet: installing them restarts
        // nothing (the node the identity is for starts using them).
        components: vec![],
        ca: ca_location.clone(),
        mode: format!("{:04o}", t.mode.unwrap_or(0o644) & 0o777),
        old_sha256: String::new(),
        new_sha256: sha256_hex(&cert_bytes),
        old_serial: None,
        new_serial: Some(issued.info.serial.clone()),
        sans: Some(diff.clone()),
        key: Some("new".into()),
        like: Some(t.path.clone()),
        contents: cert_bytes,
    };
    let key_file = BundleFile {
        bundle_path: relative(&key_target),
        target: key_target.clone(),
        kind: "private-key",
        role,
        components: vec![],
        ca: ca_location.clone(),
        mode: "0600".into(),
        old_sha256: String::new(),
        new_sha256: sha256_hex(key_pem.as_bytes()),
        old_serial: None,
        new_serial: None,
        sans: None,
        key: Some(cert_target.display().to_string()),
        like: template_key.as_ref().map(|(p, _)| p.clone()),
        contents: key_pem.into_bytes(),
    };
    let manifest = Manifest {
        schema: "certs.bundle/v1",
        created: crate::duration::rfc3339(req.now),
        ca: CaRef {
            certificate: ca_location.clone(),
            subject: ca.info.subject.clone(),
        },
        files: vec![cert_file, key_file],
    };
    Ok(Like {
        template: t,
        ca: (ca_location, ca.info.subject.clone()),
        edit,
        diff,
        issued,
        key_format,
        key_format_from,
        cert_target,
        key_target,
        warnings,
        manifest,
    })
}

/// A common name an operator meant: not empty, no surrounding blanks, no control characters.
fn check_cn(cn: &str) -> Result<(), IssueError> {
    if cn.trim().is_empty() {
        return Err(IssueError::Name(
            "--cn: expected the new identity's common name, found an empty one".into(),
        ));
    }
    if cn.trim() != cn {
        return Err(IssueError::Name(format!(
            "--cn: expected a common name without leading or trailing blanks, found `{cn}`"
        )));
    }
    if cn.chars().any(char::is_control) {
        return Err(IssueError::Name(format!(
            "--cn: expected a common name without control characters, found {cn:?}"
        )));
    }
    Ok(())
}

/// The certificate of a certificate file (its first one); a kubeconfig is refused.
fn template(path: &Path) -> Result<Reissuable> {
    let targets = target::load(path)?;
    let found = targets.iter().position(|t| t.user.is_none());
    match found {
        Some(i) => Ok(targets.into_iter().nth(i).expect("found above")),
        None => Err(Error::Usage(format!(
            "`{}`: expected a certificate file as the template, found a kubeconfig (its client certificate is not a file a new identity can be installed beside)",
            path.display()
        ))),
    }
}

/// The template's Subject (DER) with the value of its one CN attribute replaced by `cn`: the
/// RDNs, their order, every other attribute and the CN's string type as they were. A CN that
/// the template's string type cannot hold (a PrintableString has no `_` or `@`) is written as
/// a UTF8String, as Go and cfssl would, with a warning.
pub fn replace_cn(subject: &[u8], cn: &str) -> Result<(Vec<u8>, Vec<String>), IssueError> {
    let bad =
        |e: String| IssueError::Name(format!("its subject is not a DER Name I can edit ({e})"));
    let name = der::read_tlv(subject).map_err(|e| bad(e.to_string()))?;
    if name.tag != 0x30 || !name.rest.is_empty() {
        return Err(bad("not one SEQUENCE".into()));
    }
    let mut warnings = Vec::new();
    let mut found = 0;
    let mut rdns: Vec<Vec<u8>> = Vec::new();
    for rdn in der::read_all(name.content).map_err(|e| bad(e.to_string()))? {
        if rdn.tag != 0x31 {
            return Err(bad("an RDN that is not a SET".into()));
        }
        let atvs = der::read_all(rdn.content).map_err(|e| bad(e.to_string()))?;
        let mut changed = false;
        let mut out: Vec<Vec<u8>> = Vec::new();
        for atv in atvs {
            let parts = der::read_all(atv.content).map_err(|e| bad(e.to_string()))?;
            let (oid, value) = match (atv.tag, parts.as_slice()) {
                (0x30, [oid, value]) if oid.tag == 0x06 => (oid, value),
                _ => return Err(bad("an attribute that is not (OID, value)".into())),
            };
            if oid.content != OID_CN {
                out.push(atv.whole.to_vec());
                continue;
            }
            found += 1;
            changed = true;
            let (tag, bytes, warning) = encode_like(value.tag, cn);
            warnings.extend(warning);
            out.push(der::seq(&[oid.whole, &der::tlv(tag, &bytes)]));
        }
        rdns.push(if changed {
            der::tlv(0x31, &out.concat())
        } else {
            rdn.whole.to_vec()
        });
    }
    match found {
        1 => {}
        0 => {
            return Err(IssueError::Name("expected a subject with a CN to replace, found none (a new identity is told apart by its CN)".into()))
        }
        n => {
            return Err(IssueError::Name(format!(
                "expected a subject with one CN to replace, found {n}: which one is the identity is ambiguous"
            )))
        }
    }
    let refs: Vec<&[u8]> = rdns.iter().map(Vec::as_slice).collect();
    Ok((der::seq(&refs), warnings))
}

/// `cn` in the string type `tag` if that type can hold it, else as a UTF8String.
fn encode_like(tag: u8, cn: &str) -> (u8, Vec<u8>, Option<String>) {
    const UTF8: u8 = 0x0c;
    let printable = |c: char| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c);
    let fits = match tag {
        0x13 => cn.chars().all(printable),
        // IA5String, TeletexString (read as Latin-1 by most, ASCII is safe)
        0x16 | 0x14 => cn.is_ascii(),
        UTF8 => true,
        0x1e => cn.chars().all(|c| (c as u32) <= 0xffff),
        0x1c => true,
        _ => false,
    };
    if !fits {
        let name = match tag {
            0x13 => "a PrintableString",
            0x16 => "an IA5String",
            0x14 => "a TeletexString",
            0x1e => "a BMPString",
            _ => "its string type",
        };
        return (
            UTF8,
            cn.as_bytes().to_vec(),
            Some(format!(
                "the template's CN is {name}, which cannot hold `{cn}`: the new CN is a UTF8String (as Go and cfssl write it)"
            )),
        );
    }
    let bytes = match tag {
        0x1e => cn.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        0x1c => cn.chars().flat_map(|c| (c as u32).to_be_bytes()).collect(),
        _ => cn.as_bytes().to_vec(),
    };
    (tag, bytes, None)
}

/// A Name's RDNs, each a list of (OID, value) encodings.
type Rdns = Vec<Vec<(Vec<u8>, Vec<u8>)>>;

/// After signing: the new certificate's subject is the template's, RDN for RDN and attribute
/// for attribute, byte for byte, but for the CN, which reads back as `cn`.
fn check_subject(new: &CertInfo, template: &CertInfo, cn: &str) -> Result<(), IssueError> {
    if new.common_name.as_deref() != Some(cn) {
        return Err(IssueError::Name(format!(
            "has the CN {:?}, not {cn:?}",
            new.common_name.as_deref().unwrap_or("")
        )));
    }
    let attrs = |raw: &[u8]| -> Result<Rdns, IssueError> {
        let name = der::read_tlv(raw)?;
        der::read_all(name.content)?
            .into_iter()
            .map(|rdn| {
                der::read_all(rdn.content)?
                    .into_iter()
                    .map(|atv| {
                        let parts = der::read_all(atv.content)?;
                        match parts.as_slice() {
                            [oid, value] => Ok((oid.whole.to_vec(), value.whole.to_vec())),
                            _ => Err(IssueError::Name(
                                "an attribute that is not (OID, value)".into(),
                            )),
                        }
                    })
                    .collect()
            })
            .collect()
    };
    let (got, want) = (attrs(&new.subject_raw)?, attrs(&template.subject_raw)?);
    let same_shape = got.len() == want.len()
        && got.iter().zip(&want).all(|(g, w)| {
            g.len() == w.len()
                && g.iter()
                    .zip(w)
                    .all(|((go, gv), (wo, wv))| go == wo && (gv == wv || go[2..] == *OID_CN))
        });
    if !same_shape {
        return Err(IssueError::Name(
            "has a subject that differs from the template's in more than the CN".into(),
        ));
    }
    Ok(())
}

/// The template's private key file beside it (paired by public key), with its format. A
/// certificate and key in one file is refused: the new pair could not be installed apart.
fn template_key(t: &Reissuable, scans: &mut Scans) -> Result<Option<(PathBuf, KeyFormat)>> {
    let inv = scans.of(t.path.parent().unwrap_or(Path::new("/")))?;
    let entry = inv.certificates.iter().find(|c| {
        c.location.path == t.path && c.location.index == 0 && c.location.embedded.is_none()
    });
    let Some(key) = entry.and_then(|c| c.key).map(|k| &inv.keys[k]) else {
        return Ok(None);
    };
    if key.location.path == t.path {
        return Err(Error::Usage(format!(
            "`{}`: certificate and key share one file; pass --name and split the template, or issue from a template whose key is a file of its own",
            t.path.display()
        )));
    }
    Ok(Some((key.location.path.clone(), key.info.format)))
}

/// The format of the new key: the template key's when it can hold the new algorithm; a
/// traditional format (PKCS#1, SEC1) stays traditional for another algorithm; else PKCS#8.
fn new_key_format(
    template_key: Option<&(PathBuf, KeyFormat)>,
    algo: &KeyAlgo,
) -> (KeyFormat, String) {
    let Some((path, format)) = template_key else {
        return (
            KeyFormat::Pkcs8,
            "PKCS#8: no key of the template's beside it".into(),
        );
    };
    let traditional = matches!(format, KeyFormat::Pkcs1 | KeyFormat::Sec1);
    let chosen = match (algo.algo.as_str(), traditional) {
        ("rsa", true) => KeyFormat::Pkcs1,
        ("ecdsa", true) => KeyFormat::Sec1,
        _ => KeyFormat::Pkcs8,
    };
    let name = |f: KeyFormat| match f {
        KeyFormat::Pkcs1 => "PKCS#1",
        KeyFormat::Sec1 => "SEC1",
        _ => "PKCS#8",
    };
    let why = if chosen == *format {
        format!("{}, as {}", name(chosen), path.display())
    } else {
        format!(
            "{}, for {} (the template's key {} is {})",
            name(chosen),
            algo,
            path.display(),
            name(*format)
        )
    };
    (chosen, why)
}

/// A bare file name for `--name`.
fn checked_name(name: &str) -> Result<&str, IssueError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(IssueError::Name(format!(
            "--name: expected a file name (it goes beside the template), found `{name}`"
        )));
    }
    Ok(name)
}

/// The part of `old` that `new` changes, widened to whole tokens (runs of letters and digits):
/// `etcd-member-node1` → `etcd-member-node4` changes `node1` into `node4`.
pub fn changed_part<'a>(old: &'a str, new: &'a str) -> (&'a str, &'a str) {
    if old == new {
        return ("", "");
    }
    let token = |c: char| c.is_alphanumeric();
    let mut p = old
        .char_indices()
        .zip(new.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(old.len().min(new.len()));
    // `old[..p] == new[..p]`, char boundaries in both.
    while let Some(c) = old[..p].chars().next_back().filter(|c| token(*c)) {
        p -= c.len_utf8();
    }
    let max = old.len().min(new.len()) - p;
    let mut s = old[p..]
        .chars()
        .rev()
        .zip(new[p..].chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .scan(0, |sum, n| {
            *sum += n;
            Some(*sum)
        })
        .take_while(|sum| *sum <= max)
        .last()
        .unwrap_or(0);
    while let Some(c) = old[old.len() - s..].chars().next().filter(|c| token(*c)) {
        s -= c.len_utf8();
    }
    (&old[p..old.len() - s], &new[p..new.len() - s])
}

/// `member-node1.pem` → `member-node4.pem` when the template's file name holds the changed
/// part of the CN once; otherwise `--name` is needed.
fn derived_name(template: &Path, old_cn: &str, new_cn: &str) -> Result<String, IssueError> {
    let file = template
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (from, to) = changed_part(old_cn, new_cn);
    match replace_once(file, from, to) {
        Some(name) => Ok(name),
        None => Err(IssueError::Name(format!(
            "cannot name the new certificate: the template's file name `{file}` {} the part of its CN `{old_cn}` that --cn changes ({}); pass --name FILE",
            if from.is_empty() || !file.contains(from) { "does not hold" } else { "holds more than once" },
            if from.is_empty() { "nothing: --cn only adds to it".to_string() } else { format!("`{from}` → `{to}`") }
        ))),
    }
}

/// `text` with its one occurrence of `from` replaced (`None`: none, or several).
fn replace_once(text: &str, from: &str, to: &str) -> Option<String> {
    (!from.is_empty() && text.matches(from).count() == 1).then(|| text.replacen(from, to, 1))
}

/// The new key's file name: the template key's with the same change as the certificate's
/// (`member-node1-key.pem` → `member-node4-key.pem`), or the new certificate's stem with the
/// template key's suffix (`apiserver.crt`/`apiserver.key`), or the conventional name.
fn key_name(
    template: &Path,
    template_key: Option<&PathBuf>,
    cert_name: &str,
    old_cn: &str,
    new_cn: &str,
) -> String {
    let stem = |n: &str| {
        n.rsplit_once('.')
            .map_or(n.to_string(), |(s, _)| s.to_string())
    };
    let new_stem = stem(cert_name);
    if let Some(key) = template_key
        .and_then(|k| k.file_name())
        .and_then(|n| n.to_str())
    {
        let old_stem = template
            .file_name()
            .and_then(|n| n.to_str())
            .map(stem)
            .unwrap_or_default();
        if let Some(rest) = key.strip_prefix(&old_stem).filter(|_| !old_stem.is_empty()) {
            return format!("{new_stem}{rest}");
        }
        let (from, to) = changed_part(old_cn, new_cn);
        if let Some(name) = replace_once(key, from, to) {
            return name;
        }
    }
    match cert_name.rsplit_once('.') {
        Some((s, "pem")) => format!("{s}-key.pem"),
        Some((s, _)) => format!("{s}.key"),
        None => format!("{cert_name}.key"),
    }
}

/// The new certificate file: PEM (with the template's chain after it, if it has one) when the
/// template is PEM, DER when it is DER.
fn new_cert_file(template: &[u8], new_der: &[u8]) -> Vec<u8> {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let Ok(blocks) = pem::parse_many(template) else {
        return new_der.to_vec();
    };
    let certs: Vec<&pem::Pem> = blocks.iter().filter(|b| b.tag() == "CERTIFICATE").collect();
    if certs.is_empty() {
        return new_der.to_vec();
    }
    let mut out = pem::encode_config(&pem::Pem::new("CERTIFICATE", new_der.to_vec()), config);
    for chain in certs.iter().skip(1) {
        out.push_str(&pem::encode_config(chain, config));
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_changed_part_is_whole_tokens() {
        assert_eq!(
            changed_part("etcd-member-node1", "etcd-member-node4"),
            ("node1", "node4")
        );
        assert_eq!(
            changed_part("system:node:master1", "system:node:worker12"),
            ("master1", "worker12")
        );
        assert_eq!(changed_part("kube-etcd", "kube-etcd2"), ("etcd", "etcd2"));
        assert_eq!(changed_part("a-node1-x", "a-node22-x"), ("node1", "node22"));
        assert_eq!(changed_part("etcd-", "etcd-x"), ("", "x"));
        assert_eq!(changed_part("ab", "ab"), ("", ""));
    }

    #[test]
    fn names_follow_the_cn() {
        let t = Path::new("/etc/ssl/etcd/ssl/member-node1.pem");
        assert_eq!(
            derived_name(t, "etcd-member-node1", "etcd-member-node4").unwrap(),
            "member-node4.pem"
        );
        let e = derived_name(Path::new("/x/server.crt"), "kube-etcd", "kube-etcd2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--name"), "{e}");
        let e = derived_name(Path::new("/x/node1-node1.pem"), "node1", "node4")
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than once"), "{e}");
        let key = PathBuf::from("/etc/ssl/etcd/ssl/member-node1-key.pem");
        assert_eq!(
            key_name(
                t,
                Some(&key),
                "member-node4.pem",
                "etcd-member-node1",
                "etcd-member-node4"
            ),
            "member-node4-key.pem"
        );
        let crt = Path::new("/p/apiserver.crt");
        let k = PathBuf::from("/p/apiserver.key");
        assert_eq!(key_name(crt, Some(&k), "api2.crt", "a", "b"), "api2.key");
        assert_eq!(key_name(crt, None, "api2.pem", "a", "b"), "api2-key.pem");
        assert!(checked_name("../x.pem").is_err() && checked_name("x.pem").is_ok());
    }

    /// Name ::= SEQUENCE OF RDN; each attribute (OID, value) as `(oid bytes, tag, value)`.
    /// (OID content, value tag, value content)
    type Atv<'a> = (&'a [u8], u8, &'a [u8]);

    fn name(rdns: &[&[Atv]]) -> Vec<u8> {
        let sets: Vec<Vec<u8>> = rdns
            .iter()
            .map(|atvs| {
                let inner: Vec<Vec<u8>> = atvs
                    .iter()
                    .map(|(oid, tag, v)| der::seq(&[&der::tlv(0x06, oid), &der::tlv(*tag, v)]))
                    .collect();
                der::tlv(0x31, &inner.concat())
            })
            .collect();
        let refs: Vec<&[u8]> = sets.iter().map(Vec::as_slice).collect();
        der::seq(&refs)
    }

    #[test]
    fn only_the_cn_value_changes() {
        const C: &[u8] = &[0x55, 4, 6];
        const O: &[u8] = &[0x55, 4, 10];
        // C (PrintableString), a multi-valued RDN of O (UTF8String) and CN (PrintableString), O.
        let before = name(&[
            &[(C, 0x13, b"CN")],
            &[
                (O, 0x0c, b"system:masters"),
                (OID_CN, 0x13, b"etcd-member-node1"),
            ],
            &[(O, 0x0c, b"k8s")],
        ]);
        let (after, warnings) = replace_cn(&before, "etcd-member-node4").unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            after,
            name(&[
                &[(C, 0x13, b"CN")],
                &[
                    (O, 0x0c, b"system:masters"),
                    (OID_CN, 0x13, b"etcd-member-node4")
                ],
                &[(O, 0x0c, b"k8s")],
            ])
        );
        // A PrintableString cannot hold `_`: UTF8String, said.
        let (after, warnings) = replace_cn(&before, "etcd_member").unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(after
            .windows(13)
            .any(|w| w == [&[0x0c, 11][..], b"etcd_member"].concat()));
        // No CN, or two: refused.
        assert!(replace_cn(&name(&[&[(O, 0x0c, b"x")]]), "a").is_err());
        let two = name(&[&[(OID_CN, 0x13, b"a")], &[(OID_CN, 0x13, b"b")]]);
        assert!(replace_cn(&two, "c")
            .unwrap_err()
            .to_string()
            .contains("found 2"));
    }

    #[test]
    fn bad_common_names() {
        assert!(check_cn("").is_err());
        assert!(check_cn("  ").is_err());
        assert!(check_cn(" x").is_err());
        assert!(check_cn("a\nb").is_err());
        assert!(check_cn("etcd-member-node4").is_ok());
    }
}
