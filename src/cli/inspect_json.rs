//! `inspect -o json`: the `certs.inspect/v1` report.
//!
//! The report is written field by field in serde_json's pretty layout. The three long arrays
//! (certificates, keys, kubeconfigs) are rendered in pieces on all cores and written in order
//! as the pieces are ready ([`crate::par::write_ordered`]), so a fleet's report neither waits
//! for one core nor is ever held whole in memory. The bytes are exactly those of
//! `serde_json::to_writer_pretty` on the whole report (a test holds that).

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{json, Value};

use super::render::{trust_words, Endpoint};
use crate::duration::rfc3339;
use crate::pki::cert::CertInfo;
use crate::pki::inventory::{CertEntry, Inventory, Status};
use crate::pki::kubeconfig::Source;

/// Items per piece of a long array: large enough that hand-over costs nothing, small enough
/// that a few pieces in flight are a few hundred KiB.
const PIECE: usize = 64;

/// Writes the report (without the final newline).
pub fn write(out: &mut dyn Write, inv: &Inventory, endpoints: &[Endpoint]) -> io::Result<()> {
    write_in_pieces(out, inv, endpoints, PIECE)
}

fn write_in_pieces(
    out: &mut dyn Write,
    inv: &Inventory,
    endpoints: &[Endpoint],
    piece: usize,
) -> io::Result<()> {
    let mut obj = Object::start(out, piece)?;
    obj.field("schema", &"certs.inspect/v1")?;
    obj.field("now", &rfc3339(inv.now))?;
    obj.field("warn_within_seconds", &inv.warn_within)?;
    obj.array("certificates", &inv.certificates, |c, buf| {
        element(buf, &entry_json(inv, c))
    })?;
    obj.array("keys", &keys_json(inv), |k, buf| element(buf, k))?;
    obj.array("kubeconfigs", &inv.kubeconfigs, |kc, buf| {
        element(buf, &kubeconfig_json(inv, kc))
    })?;
    obj.field("csrs", &csrs_json(inv))?;
    obj.field("cfssl", &cfssl_json(inv))?;
    obj.field("endpoints", &endpoints_json(inv, endpoints))?;
    obj.field("findings", &inv.findings)?;
    obj.end()
}

/// A pretty-printed JSON object at the top level, written one field at a time.
struct Object<'w> {
    out: &'w mut dyn Write,
    first: bool,
    piece: usize,
}

impl<'w> Object<'w> {
    fn start(out: &'w mut dyn Write, piece: usize) -> io::Result<Self> {
        out.write_all(b"{")?;
        Ok(Object {
            out,
            first: true,
            piece,
        })
    }

    fn key(&mut self, key: &str) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n  " } else { b",\n  " })?;
        self.first = false;
        serde_json::to_writer(&mut *self.out, key)?;
        self.out.write_all(b": ")
    }

    fn field(&mut self, key: &str, value: &impl Serialize) -> io::Result<()> {
        self.key(key)?;
        let mut buf = Vec::new();
        pretty_at(&mut buf, value, 1)?;
        self.out.write_all(&buf)
    }

    /// An array field whose elements `element` writes from `items`, on all cores.
    fn array<T: Sync>(
        &mut self,
        key: &str,
        items: &[T],
        element: impl Fn(&T, &mut Vec<u8>) -> io::Result<()> + Sync,
    ) -> io::Result<()> {
        self.key(key)?;
        if items.is_empty() {
            return self.out.write_all(b"[]");
        }
        self.out.write_all(b"[")?;
        crate::par::write_ordered(self.out, items, self.piece, |start, piece, buf| {
            for (k, item) in piece.iter().enumerate() {
                buf.extend_from_slice(if start + k == 0 {
                    b"\n    "
                } else {
                    b",\n    "
                });
                element(item, buf)?;
            }
            Ok(())
        })?;
        self.out.write_all(b"\n  ]")
    }

    fn end(self) -> io::Result<()> {
        self.out.write_all(if self.first { b"}" } else { b"\n}" })
    }
}

/// An element of a top-level array field.
fn element(buf: &mut Vec<u8>, value: &impl Serialize) -> io::Result<()> {
    pretty_at(buf, value, 2)
}

/// `value` pretty-printed as it would be `depth` levels down in serde_json's pretty layout.
fn pretty_at(buf: &mut Vec<u8>, value: &impl Serialize, depth: usize) -> io::Result<()> {
    let mut ser = serde_json::Serializer::with_formatter(
        buf,
        Pretty {
            depth,
            has_value: false,
        },
    );
    value.serialize(&mut ser)?;
    Ok(())
}

/// serde_json's `PrettyFormatter` (two spaces a level), starting `depth` levels down, so that
/// a value can be written straight into its place in the report.
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(bracket)
    }

    fn next<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.next(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.next(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

#[derive(Serialize)]
struct CertJson<'a> {
    path: String,
    index: usize,
    embedded: Option<&'a str>,
    role: &'a str,
    subject: &'a str,
    issuer: &'a str,
    serial: &'a str,
    not_before: String,
    not_after: String,
    residual_seconds: i64,
    status: &'a str,
    sans: &'a crate::pki::cert::Sans,
    key: &'a crate::pki::key::KeyAlgo,
    is_ca: bool,
    path_len: Option<u32>,
    key_usage: &'a [String],
    ext_key_usage: &'a [String],
    subject_key_id: Option<&'a str>,
    authority_key_id: Option<&'a str>,
    signature_algorithm: &'a str,
    sha256: &'a str,
    self_signed: bool,
    signed_by: Option<String>,
    key_path: Option<String>,
}

fn cert_json<'a>(
    path: String,
    index: usize,
    embedded: Option<&'a str>,
    role: &'a str,
    status: Status,
    info: &'a CertInfo,
    now: i64,
) -> CertJson<'a> {
    CertJson {
        path,
        index,
        embedded,
        role,
        subject: &info.subject,
        issuer: &info.issuer,
        serial: &info.serial,
        not_before: rfc3339(info.not_before),
        not_after: rfc3339(info.not_after),
        residual_seconds: info.not_after - now,
        status: status.as_str(),
        sans: &info.sans,
        key: &info.key,
        is_ca: info.is_ca,
        path_len: info.path_len,
        key_usage: &info.key_usage,
        ext_key_usage: &info.ext_key_usage,
        subject_key_id: info.subject_key_id.as_deref(),
        authority_key_id: info.authority_key_id.as_deref(),
        signature_algorithm: &info.signature_algorithm,
        sha256: &info.sha256,
        self_signed: false,
        signed_by: None,
        key_path: None,
    }
}

fn entry_json<'a>(inv: &'a Inventory, c: &'a CertEntry) -> CertJson<'a> {
    let mut j = cert_json(
        c.location.path.display().to_string(),
        c.location.index,
        c.location.embedded.as_deref(),
        c.role.as_str(),
        c.status,
        &c.info,
        inv.now,
    );
    j.signed_by = c
        .signed_by
        .map(|i| inv.certificates[i].location.to_string());
    j.key_path = c.key.map(|k| inv.keys[k].location.to_string());
    j.self_signed = c
        .signed_by
        .is_some_and(|i| std::ptr::eq(&inv.certificates[i], c));
    j
}

#[derive(Serialize)]
struct KeyJson<'a> {
    path: String,
    index: usize,
    embedded: &'a Option<String>,
    format: &'a crate::pki::key::KeyFormat,
    private: bool,
    encrypted: bool,
    key: &'a Option<crate::pki::key::KeyAlgo>,
    certificates: Vec<String>,
}

#[derive(Serialize)]
struct KubeconfigJson<'a> {
    path: String,
    server: &'a Option<String>,
    current_context: &'a Option<String>,
    current_user: &'a Option<String>,
    clusters: Vec<ClusterJson<'a>>,
    users: Vec<UserJson<'a>>,
}

#[derive(Serialize)]
struct ClusterJson<'a> {
    name: &'a str,
    server: &'a str,
    certificate_authority: Option<SourceJson<'a, CaDetail<'a>>>,
    matches_ca: Option<String>,
}

#[derive(Serialize)]
struct CaDetail<'a> {
    subject: &'a str,
    sha256: &'a str,
}

#[derive(Serialize)]
struct UserJson<'a> {
    name: &'a str,
    client_certificate: Option<SourceJson<'a, CertDetail<'a>>>,
    client_key: Option<SourceJson<'a, KeyDetail>>,
}

#[derive(Serialize)]
struct CertDetail<'a> {
    path: String,
    subject: &'a str,
    not_after: String,
    status: &'a str,
    signed_by: Option<String>,
    key_matches: bool,
}

#[derive(Serialize)]
struct KeyDetail {
    path: String,
}

/// Where a kubeconfig field's credential comes from, and what it resolved to.
#[derive(Serialize)]
struct SourceJson<'a, D> {
    source: &'static str,
    file: Option<String>,
    error: Option<&'a str>,
    #[serde(flatten)]
    detail: Option<D>,
}

fn kubeconfig_json<'a>(
    inv: &'a Inventory,
    kc: &'a crate::pki::inventory::KubeconfigEntry,
) -> KubeconfigJson<'a> {
    let users = kc
        .config
        .users
        .iter()
        .zip(&kc.users)
        .map(|(u, (cert, key))| UserJson {
            name: &u.name,
            client_certificate: source_json(
                &u.client_cert,
                cert.map(|i| {
                    let e = &inv.certificates[i];
                    CertDetail {
                        path: e.location.to_string(),
                        subject: &e.info.subject,
                        not_after: rfc3339(e.info.not_after),
                        status: e.status.as_str(),
                        signed_by: e
                            .signed_by
                            .map(|s| inv.certificates[s].location.to_string()),
                        key_matches: key.is_some() && e.key == *key,
                    }
                }),
            ),
            client_key: source_json(
                &u.client_key,
                key.map(|k| KeyDetail {
                    path: inv.keys[k].location.to_string(),
                }),
            ),
        })
        .collect();
    let clusters = kc
        .config
        .clusters
        .iter()
        .zip(&kc.cluster_cas)
        .map(|(cl, ca)| {
            let detail = match &cl.ca {
                Some(Source::Embedded(info)) => Some(CaDetail {
                    subject: &info.subject,
                    sha256: &info.sha256,
                }),
                _ => None,
            };
            ClusterJson {
                name: &cl.name,
                server: &cl.server,
                certificate_authority: source_json(&cl.ca, detail),
                matches_ca: ca.map(|i| inv.certificates[i].location.to_string()),
            }
        })
        .collect();
    KubeconfigJson {
        path: kc.path.display().to_string(),
        server: &kc.config.server,
        current_context: &kc.config.current_context,
        current_user: &kc.config.current_user,
        clusters,
        users,
    }
}

fn source_json<'a, T, D>(
    source: &'a Option<Source<T>>,
    detail: Option<D>,
) -> Option<SourceJson<'a, D>> {
    let (kind, file, error) = match source.as_ref()? {
        Source::Embedded(_) | Source::Inventoried => ("embedded", None, None),
        Source::File(p) => ("file", Some(p.display().to_string()), None),
        Source::Broken(e) => ("broken", None, Some(e.as_str())),
    };
    Some(SourceJson {
        source: kind,
        file,
        error,
        detail,
    })
}

fn keys_json(inv: &Inventory) -> Vec<KeyJson<'_>> {
    let mut pairs_of: Vec<Vec<String>> = vec![Vec::new(); inv.keys.len()];
    for c in &inv.certificates {
        if let Some(k) = c.key {
            pairs_of[k].push(c.location.to_string());
        }
    }
    inv.keys
        .iter()
        .zip(pairs_of)
        .map(|(key, certificates)| KeyJson {
            path: key.location.path.display().to_string(),
            index: key.location.index,
            embedded: &key.location.embedded,
            format: &key.info.format,
            private: key.info.format.is_private(),
            encrypted: key.info.format.is_encrypted(),
            key: &key.info.algo,
            certificates,
        })
        .collect()
}

fn endpoints_json(inv: &Inventory, endpoints: &[Endpoint]) -> Vec<Value> {
    endpoints
        .iter()
        .map(|e| {
            let (trust, detail) = trust_words(&e.trust);
            let chain: Vec<_> = e
                .chain
                .iter()
                .enumerate()
                .map(|(i, info)| {
                    let status = Status::at(inv.now, inv.warn_within, info.not_before, info.not_after);
                    let mut j = cert_json(e.url.clone(), i, None, "served", status, info, inv.now);
                    j.self_signed = info.is_signed_by(info);
                    j
                })
                .collect();
            json!({"url": e.url, "trust": trust, "detail": detail, "handshake_error": e.handshake_error, "chain": chain})
        })
        .collect()
}

fn csrs_json(inv: &Inventory) -> Vec<Value> {
    inv.csrs
        .iter()
        .map(|(p, c)| json!({"path": p.display().to_string(), "subject": c.subject, "sans": c.sans, "key": c.key}))
        .collect()
}

fn cfssl_json(inv: &Inventory) -> Vec<Value> {
    inv.cfssl_csrs
        .iter()
        .map(|(p, s)| json!({"path": p.display().to_string(), "kind": "csr", "CN": s.cn, "hosts": s.hosts}))
        .chain(inv.cfssl_configs.iter().map(|(p, profiles)| {
            json!({"path": p.display().to_string(), "kind": "ca-config", "profiles": profiles})
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::scan::{scan, ScanRequest};

    /// The kubeconfig entry as the report first built it, as a serde value: the reference the
    /// typed entry must print the same as.
    fn kubeconfig_value(inv: &Inventory, kc: &crate::pki::inventory::KubeconfigEntry) -> Value {
        let users: Vec<Value> = kc
                    .config
                    .users
                    .iter()
                    .zip(&kc.users)
                    .map(|(u, (cert, key))| {
                        json!({
                            "name": u.name,
                            "client_certificate": source_value(&u.client_cert, cert.map(|i| {
                                let e = &inv.certificates[i];
                                json!({
                                    "path": e.location.to_string(),
                                    "subject": e.info.subject,
                                    "not_after": rfc3339(e.info.not_after),
                                    "status": e.status.as_str(),
                                    "signed_by": e.signed_by.map(|s| inv.certificates[s].location.to_string()),
                                    "key_matches": key.is_some() && e.key == *key,
                                })
                            })),
                            "client_key": source_value(&u.client_key, key.map(|k| json!({"path": inv.keys[k].location.to_string()}))),
                        })
                    })
                    .collect();
        let clusters: Vec<Value> = kc
            .config
            .clusters
            .iter()
            .zip(&kc.cluster_cas)
            .map(|(cl, ca)| {
                let detail = match &cl.ca {
                    Some(Source::Embedded(info)) => {
                        Some(json!({"subject": info.subject, "sha256": info.sha256}))
                    }
                    _ => None,
                };
                json!({
                    "name": cl.name,
                    "server": cl.server,
                    "certificate_authority": source_value(&cl.ca, detail),
                    "matches_ca": ca.map(|i| inv.certificates[i].location.to_string()),
                })
            })
            .collect();
        json!({
            "path": kc.path.display().to_string(),
            "server": kc.config.server,
            "current_context": kc.config.current_context,
            "current_user": kc.config.current_user,
            "clusters": clusters,
            "users": users,
        })
    }

    fn source_value<T>(source: &Option<Source<T>>, detail: Option<Value>) -> Value {
        let (kind, path, error) = match source {
            None => return Value::Null,
            Some(Source::Embedded(_) | Source::Inventoried) => ("embedded", None, None),
            Some(Source::File(p)) => ("file", Some(p.display().to_string()), None),
            Some(Source::Broken(e)) => ("broken", None, Some(e.clone())),
        };
        let mut v = json!({"source": kind, "file": path, "error": error});
        if let (Some(Value::Object(extra)), Value::Object(map)) = (detail, &mut v) {
            map.extend(extra);
        }
        v
    }

    /// The whole report as one serde value, printed by serde_json in one go: what the
    /// piecewise writer must reproduce byte for byte.
    fn reference(inv: &Inventory) -> String {
        let keys = keys_json(inv);
        let report = json!({
            "schema": "certs.inspect/v1",
            "now": rfc3339(inv.now),
            "warn_within_seconds": inv.warn_within,
            "certificates": inv.certificates.iter().map(|c| entry_json(inv, c)).collect::<Vec<_>>(),
            "keys": keys,
            "kubeconfigs": inv.kubeconfigs.iter().map(|kc| kubeconfig_value(inv, kc)).collect::<Vec<_>>(),
            "csrs": csrs_json(inv),
            "cfssl": cfssl_json(inv),
            "endpoints": endpoints_json(inv, &[]),
            "findings": inv.findings,
        });
        serde_json::to_string_pretty(&report).unwrap()
    }

    #[test]
    fn the_piecewise_report_is_serde_jsons_pretty_report() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let trees: Vec<_> = ["kubeadm", "broken", "binary", "kubespray", "kubeasz-ecdsa"]
            .iter()
            .map(|t| fixtures.join(t))
            .collect();
        // Each tree alone, then all at once: more certificates than one piece holds.
        let mut sets: Vec<&[std::path::PathBuf]> = trees.chunks(1).collect();
        sets.push(&trees);
        for paths in sets {
            let inv = scan(&ScanRequest {
                paths,
                root: &fixtures,
                now: 1_893_456_000,
                warn_within: 30 * 86_400,
            })
            .unwrap();
            // Pieces of one item, of a few, and the real size.
            for piece in [1, 3, PIECE] {
                let mut out = Vec::new();
                write_in_pieces(&mut out, &inv, &[], piece).unwrap();
                let got = String::from_utf8(out).unwrap();
                assert_eq!(got, reference(&inv), "{paths:?} in pieces of {piece}");
            }
            assert!(
                !inv.certificates.is_empty() && !inv.kubeconfigs.is_empty() || paths.len() == 1
            );
        }
        let empty = Inventory::default();
        let mut out = Vec::new();
        write(&mut out, &empty, &[]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), reference(&empty));
    }
}
