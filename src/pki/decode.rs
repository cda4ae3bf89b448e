//! Turning the bytes of one file into PKI items: PEM blocks (several per file), DER certificates,
//! kubeconfigs, cfssl JSON. Never fails: what cannot be read becomes a problem string that the
//! scan turns into a finding, and the rest of the file is still used.

use super::error::Error;
use std::path::Path;

use super::cert::CertInfo;
use super::key::{read_key_block, KeyInfo};
use super::kubeconfig::{self, Kubeconfig};

/// One thing found in a file.
#[derive(Debug, Clone)]
pub enum Item {
    /// `index` counts certificates within the file, from 0.
    Cert {
        index: usize,
        info: Box<CertInfo>,
    },
    Key {
        index: usize,
        info: KeyInfo,
    },
    Csr(CsrInfo),
    Kubeconfig(Box<Kubeconfig>),
    /// A cfssl CSR spec (`*-csr.json`).
    CfsslCsr(CfsslCsr),
    /// A cfssl signing config (`ca-config.json`): its profile names.
    CfsslConfig {
        profiles: Vec<String>,
    },
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CsrInfo {
    pub subject: String,
    pub sans: super::cert::Sans,
    pub key: Option<super::key::KeyAlgo>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CfsslCsr {
    #[serde(rename = "CN")]
    pub cn: String,
    pub hosts: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Decoded {
    pub items: Vec<Item>,
    /// Parts that look like PKI but could not be read, in words.
    pub problems: Vec<String>,
    /// Whether anything in the file is PKI at all (false for manifests, unit files, …).
    pub recognized: bool,
}

/// File names that promise PKI content: a file so named that yields nothing is a problem.
pub fn promises_pki(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(
        ext,
        "pem" | "crt" | "cer" | "der" | "key" | "pub" | "csr" | "conf" | "kubeconfig"
    ) || name == "kubeconfig"
}

pub fn decode(path: &Path, bytes: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    if bytes.is_empty() {
        if promises_pki(path) {
            out.problems.push("empty file".into());
        }
        return out;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN ") => decode_pem_text(text, &mut out),
        Ok(text) => decode_text(path, text, &mut out),
        Err(_) => decode_binary(path, bytes, &mut out),
    }
    if !out.recognized && out.problems.is_empty() && promises_pki(path) {
        out.problems
            .push("expected PEM, DER or a kubeconfig, found none".into());
    }
    for p in &mut out.problems {
        *p = withhold_encoded(p);
    }
    out
}

/// A PEM label as RFC 7468 writes them: printable ASCII other than `-` at its ends, short.
/// The longest BEGIN line [`is_label`] allows: `-----BEGIN ` + 64 + `-----`.
const BEGIN_LINE_MAX: usize = 11 + 64 + 5;

fn is_label(label: &str) -> bool {
    label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b" -_/.#".contains(&b))
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// `problem` with every long run of base64 (or hex) characters withheld: a finding may name a
/// file's structure, never quote its encoded body, which may be a private key.
pub fn withhold_encoded(problem: &str) -> String {
    const LONGEST: usize = 32;
    let encoded = |c: char| c.is_ascii_alphanumeric() || "+/=\r\n".contains(c);
    let mut out = String::with_capacity(problem.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        let chars = run.chars().filter(|c| !c.is_whitespace()).count();
        if chars > LONGEST
            && run
                .chars()
                .any(|c| c.is_ascii_digit() || c == '+' || c == '/')
        {
            out.push_str(&format!("[{chars} encoded characters withheld]"));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in problem.chars() {
        if encoded(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Splits PEM text into blocks one by one, so that one broken block does not hide the others.
pub fn decode_pem_text(text: &str, out: &mut Decoded) {
    let mut rest = text;
    let (mut certs, mut keys) = (0, 0);
    // Line numbers for problems, counted as the scan goes (counting from the start of the file
    // for each problem made a file of many broken BEGIN lines take seconds).
    let (mut counted, mut lines_before) = (0, 0);
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        // The label is what stands between `-----BEGIN ` and `-----` on the BEGIN line itself,
        // never beyond it: a BEGIN line missing a dash must not swallow the body as its label.
        // A BEGIN line is at most `-----BEGIN ` + a 64-character label + `-----`: the line
        // end is looked for that far only (on a long line of many BEGINs, looking to its end
        // from each of them was quadratic: a fuzzed 256 KiB file took seconds).
        let window = &block.as_bytes()[..block.len().min(BEGIN_LINE_MAX + 1)];
        let line_end = window
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .or((block.len() <= BEGIN_LINE_MAX).then_some(block.len()));
        let label =
            line_end.and_then(|end| block[11..end].strip_suffix("-----").filter(|l| is_label(l)));
        let line_end = line_end.unwrap_or(BEGIN_LINE_MAX);
        let Some(label) = label else {
            out.recognized = true;
            let at = text.len() - block.len();
            lines_before += text[counted..at].matches('\n').count();
            counted = at;
            let line = lines_before + 1;
            out.problems.push(format!(
                "malformed PEM BEGIN line on line {line} (expected `-----BEGIN LABEL-----`); the block is not read"
            ));
            rest = &block[11..];
            continue;
        };
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            out.recognized = true;
            out.problems.push(format!(
                "PEM block `{label}` has no END line (truncated file?)"
            ));
            return;
        };
        if end < line_end {
            out.recognized = true;
            out.problems
                .push(format!("PEM block `{label}` ends on its own BEGIN line"));
            rest = &block[line_end..];
            continue;
        }
        let block_text = &block[..end + end_marker.len()];
        rest = &block[end + end_marker.len()..];
        out.recognized = true;
        let parsed = match super::armor::parse(block_text) {
            Ok(p) => p,
            Err(e) => {
                out.problems
                    .push(format!("PEM block `{label}` is not valid base64 PEM ({e})"));
                continue;
            }
        };
        let der = parsed.contents.as_slice();
        match label {
            "CERTIFICATE" | "TRUSTED CERTIFICATE" => match CertInfo::from_der(der) {
                Ok(info) => {
                    out.items.push(Item::Cert {
                        index: certs,
                        info: Box::new(info),
                    });
                    certs += 1;
                }
                Err(e) => out.problems.push(format!(
                    "expected an X.509 certificate in PEM block {}, found {e}",
                    certs
                )),
            },
            "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => match read_csr(der) {
                Ok(csr) => out.items.push(Item::Csr(csr)),
                Err(e) => out.problems.push(format!("unreadable CSR ({e})")),
            },
            "RSA PRIVATE KEY"
            | "EC PRIVATE KEY"
            | "PRIVATE KEY"
            | "ENCRYPTED PRIVATE KEY"
            | "PUBLIC KEY"
            | "RSA PUBLIC KEY" => match read_key_block(label, der, parsed.encrypted) {
                Ok(info) => {
                    out.items.push(Item::Key { index: keys, info });
                    keys += 1;
                }
                Err(e) => out.problems.push(e.to_string()),
            },
            // Parameters, CRLs and the like are PKI but nothing we pair or reissue.
            _ => {}
        }
    }
}

fn decode_text(path: &Path, text: &str, out: &mut Decoded) {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        decode_json(text, out);
    } else if kubeconfig::looks_like(text) {
        out.recognized = true;
        match kubeconfig::parse(path, text) {
            Ok(kc) => out.items.push(Item::Kubeconfig(Box::new(kc))),
            Err(e) => out.problems.push(e.to_string()),
        }
    }
}

fn decode_json(text: &str, out: &mut Decoded) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    if let Some(profiles) = value
        .pointer("/signing/profiles")
        .and_then(|p| p.as_object())
    {
        out.recognized = true;
        out.items.push(Item::CfsslConfig {
            profiles: profiles.keys().cloned().collect(),
        });
    } else if value.get("CN").is_some() || value.get("names").is_some() {
        out.recognized = true;
        let hosts = value
            .get("hosts")
            .and_then(|h| h.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let cn = value
            .get("CN")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string();
        out.items.push(Item::CfsslCsr(CfsslCsr { cn, hosts }));
    }
}

fn decode_binary(path: &Path, bytes: &[u8], out: &mut Decoded) {
    if bytes.first() == Some(&0x30) {
        match CertInfo::from_der(bytes) {
            Ok(info) => {
                out.recognized = true;
                out.items.push(Item::Cert {
                    index: 0,
                    info: Box::new(info),
                });
            }
            Err(e) if promises_pki(path) => out
                .problems
                .push(format!("expected a DER certificate, found {e}")),
            Err(_) => out
                .problems
                .push("binary data that is neither PEM nor a DER certificate".into()),
        }
    } else {
        out.problems
            .push("binary data that is neither PEM nor a DER certificate".into());
    }
}

fn read_csr(der: &[u8]) -> Result<CsrInfo, Error> {
    use x509_parser::certification_request::X509CertificationRequest;
    use x509_parser::extensions::ParsedExtension;
    use x509_parser::prelude::FromDer;
    let (_, csr) =
        X509CertificationRequest::from_der(der).map_err(|e| Error::Csr(e.to_string()))?;
    let info = &csr.certification_request_info;
    let mut sans = super::cert::Sans::default();
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    super::cert::push_general_name(&mut sans, name);
                }
            }
        }
    }
    let key = super::spki::describe_spki(&info.subject_pki)
        .ok()
        .map(|(k, _)| k);
    Ok(CsrInfo {
        subject: info.subject.to_string(),
        sans,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).unwrap().pem() + &key.serialize_pem()
    }

    #[test]
    fn several_blocks_and_one_broken() {
        let good = ca_pem();
        let broken = "-----BEGIN CERTIFICATE-----\n!!!notbase64!!!\n-----END CERTIFICATE-----\n";
        let text = format!("{good}{broken}{good}");
        let d = decode(Path::new("bundle.pem"), text.as_bytes());
        let certs = d
            .items
            .iter()
            .filter(|i| matches!(i, Item::Cert { .. }))
            .count();
        let keys = d
            .items
            .iter()
            .filter(|i| matches!(i, Item::Key { .. }))
            .count();
        assert_eq!((certs, keys), (2, 2));
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        assert!(d.problems[0].contains("base64"));
    }

    #[test]
    fn truncated_and_empty_and_junk() {
        let good = ca_pem();
        let cut = &good[..good.len() / 3];
        let d = decode(Path::new("x.crt"), cut.as_bytes());
        assert!(d.items.is_empty());
        assert!(d.problems[0].contains("no END line"), "{:?}", d.problems);
        assert_eq!(decode(Path::new("x.pem"), b"").problems, vec!["empty file"]);
        assert!(decode(Path::new("notes.txt"), b"").problems.is_empty());
        assert!(!decode(Path::new("x.bin"), &[0xff, 0x00, 0x13])
            .problems
            .is_empty());
        let d = decode(Path::new("unit.service"), b"[Unit]\nDescription=etcd\n");
        assert!(!d.recognized && d.problems.is_empty());
        let d = decode(Path::new("x.key"), b"hello\n");
        assert!(d.problems[0].contains("found none"));
    }

    #[test]
    fn every_malformed_begin_line_is_named_by_its_own_line() {
        // Found by the pem_scan fuzz target: 256 KiB of broken BEGIN lines took seconds while
        // each problem counted lines from the top of the file again.
        let text = "-----BEGIN X\n\n-----BEGIN Y\n-----BEGIN Z\nx\n-----BEGIN W\n";
        let d = decode(Path::new("many.pem"), text.as_bytes());
        let lines: Vec<&str> = d
            .problems
            .iter()
            .map(|p| {
                p.split("on line ")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(lines, ["1", "3", "4", "6"], "{:?}", d.problems);
    }

    #[test]
    fn begin_lines_are_read_no_further_than_the_longest_label() {
        // Found by the pem_scan fuzz target: a 256 KiB file of long lines holding thousands
        // of BEGINs took seconds while each looked for its line end.
        let one_line = "-----BEGIN x".repeat(1000) + "\n";
        let d = decode(Path::new("long.pem"), one_line.as_bytes());
        assert_eq!(d.problems.len(), 1000, "{:?}", &d.problems[..2]);
        assert!(d.problems.iter().all(|p| p.contains("on line 1 ")));
        // A label of 65 characters, or anything after the dashes: not a BEGIN line.
        for line in [
            format!("-----BEGIN {}-----\n", "A".repeat(65)),
            "-----BEGIN CERTIFICATE----- \n".to_string(),
        ] {
            let d = decode(Path::new("x.pem"), line.as_bytes());
            assert!(
                d.problems[0].contains("malformed PEM BEGIN line"),
                "{:?}",
                d.problems
            );
        }
        // The longest label still is one, at the very end of the text too.
        let label = "A".repeat(64);
        let d = decode(
            Path::new("x.pem"),
            format!("-----BEGIN {label}-----").as_bytes(),
        );
        assert!(
            d.problems[0].contains("has no END line"),
            "{:?}",
            d.problems
        );
    }

    #[test]
    fn a_key_with_a_malformed_begin_line_is_named_by_line_never_quoted() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem();
        let body: String = key.lines().nth(1).unwrap().to_string();
        let broken = format!(
            "# kubeadm\n{}",
            key.replacen("PRIVATE KEY-----", "PRIVATE KEY----", 1)
        );
        let d = decode(Path::new("apiserver.key"), broken.as_bytes());
        assert!(d.items.is_empty());
        assert_eq!(d.problems.len(), 1, "{:?}", d.problems);
        let p = &d.problems[0];
        assert!(p.contains("malformed PEM BEGIN line on line 2"), "{p}");
        assert!(!p.contains(&body[..16]), "{p}");
        // A good block after the broken one is still read.
        let d = decode(
            Path::new("both.pem"),
            format!("{broken}{}", ca_pem()).as_bytes(),
        );
        assert_eq!(d.items.len(), 2, "{:?}", d.problems);
        // Whatever the wording of a problem, an encoded body in it is withheld.
        let w = withhold_encoded(&format!("bad `{body}` here"));
        assert!(!w.contains(&body[..16]) && w.contains("withheld"), "{w}");
        let plain = "PEM block `RSA PRIVATE KEY` has no END line (kube-apiserver-etcd-client)";
        assert_eq!(withhold_encoded(plain), plain);
    }

    #[test]
    fn cfssl_json() {
        let d = decode(
            Path::new("etcd-csr.json"),
            br#"{"CN":"etcd","hosts":["127.0.0.1"]}"#,
        );
        assert!(
            matches!(&d.items[0], Item::CfsslCsr(c) if c.cn == "etcd" && c.hosts == ["127.0.0.1"])
        );
        let d = decode(
            Path::new("ca-config.json"),
            br#"{"signing":{"profiles":{"kubernetes":{}}}}"#,
        );
        assert!(
            matches!(&d.items[0], Item::CfsslConfig { profiles } if profiles == &["kubernetes"])
        );
    }
}
