//! Targets `pem_scan` (the PEM/DER scanner and the inventory it feeds) and `key_decode`
//! (the key decoders, the signing-key loader and the certificate decoder).

use super::*;

// ---- pem_scan: the PEM/DER scanner and the inventory it feeds ----

const NAMES: &[&str] = &[
    "etc/kubernetes/pki/apiserver.crt",
    "etc/kubernetes/pki/apiserver.key",
    "etc/kubernetes/ssl/ca.pem",
    "etc/kubernetes/admin.conf",
    "etc/kubernetes/kubeconfig",
    "etc/kubernetes/pki/sa.pub",
    "etc/kubernetes/pki/apiserver.csr",
    "etc/kubernetes/ssl/ca-config.json",
    "etc/kubernetes/ssl/etcd-csr.json",
    "etc/kubernetes/pki/ca.der",
    "etc/kubernetes/notes.txt",
    "etc/kubernetes/kube-proxy.kubeconfig",
];

fn name_for(path: &Path) -> u8 {
    let file = path.file_name().unwrap().to_string_lossy();
    let ext = path.extension().map(|e| e.to_string_lossy().to_string());
    let i = NAMES
        .iter()
        .position(|n| n.ends_with(&*file))
        .or_else(|| {
            let ext = ext.as_deref()?;
            NAMES.iter().position(|n| n.ends_with(&format!(".{ext}")))
        })
        .unwrap_or(10);
    i as u8
}

fn read_node(path: &Path) -> Walked {
    match kubeadm().1.get(path) {
        Some(b) => Walked::File {
            path: path.to_path_buf(),
            bytes: b.clone(),
        },
        None => Walked::Problem {
            path: path.to_path_buf(),
            code: certs::sys::fs::Unread::Unreadable,
            message: "no such file".into(),
        },
    }
}

fn pem_scan_seeds() -> Vec<Vec<u8>> {
    all_fixtures()
        .iter()
        .map(|(p, b)| with(name_for(p), b))
        .collect()
}

fn pem_scan(input: &[u8]) -> Verdict {
    let (ctl, bytes) = split(input);
    let (root, node) = kubeadm();
    let path = root.join(NAMES[ctl as usize % NAMES.len()]);
    let decoded = decode::decode(&path, bytes);
    let mut sig = String::new();
    for item in &decoded.items {
        sig.push_str(match item {
            Item::Cert { .. } => "C",
            Item::Key { .. } => "K",
            Item::Csr(_) => "R",
            Item::Kubeconfig(_) => "Y",
            Item::CfsslCsr(_) => "J",
            Item::CfsslConfig { .. } => "G",
        });
    }
    // Every message at once: decoding the input per message made this check quadratic (a
    // 256 KiB input with 10,000 broken BEGIN lines took seconds in the harness, not in certs).
    no_key_body(bytes, &decoded.problems.join("\n"))?;
    for p in &decoded.problems {
        sig.push_str(&format!("|{}", shape(p)));
    }
    // The scanned file among its CA and the CA's key, linked as a scan links them.
    let ca = root.join("etc/kubernetes/pki/ca.crt");
    let ca_key = root.join("etc/kubernetes/pki/ca.key");
    let mut walked = vec![Walked::File {
        path: path.clone(),
        bytes: bytes.to_vec(),
    }];
    for p in [ca, ca_key] {
        if p != path {
            walked.push(Walked::File {
                bytes: node[&p].clone(),
                path: p,
            });
        }
    }
    let opts = Options {
        now: 1_800_000_000,
        warn_within: 30 * 86_400,
        root,
    };
    let inv = Inventory::build(walked, &opts, &read_node);
    let messages: Vec<&str> = inv.findings.iter().map(|f| f.message.as_str()).collect();
    no_key_body(bytes, &messages.join("\n"))?;
    for f in &inv.findings {
        sig.push_str(&format!(";{}", f.code));
    }
    sig.push_str(&format!(
        "/{}c{}k{}y",
        inv.certificates.len(),
        inv.keys.len(),
        inv.kubeconfigs.len()
    ));
    Ok(sig)
}

pub const PEM_SCAN: Target = Target {
    name: "pem_scan",
    about: "pki::decode (PEM blocks, DER, kubeconfigs, cfssl JSON) and the inventory linking one file with a CA",
    seeds: pem_scan_seeds,
    dict: &[
        b"-----BEGIN ",
        b"-----END ",
        b"CERTIFICATE-----\n",
        b"-----BEGIN CERTIFICATE-----\n",
        b"-----END CERTIFICATE-----\n",
        b"-----BEGIN RSA PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY----\n",
        b"-----BEGIN EC PRIVATE KEY-----\n",
        b"-----BEGIN PUBLIC KEY-----\n",
        b"-----BEGIN CERTIFICATE REQUEST-----\n",
        b"Proc-Type: 4,ENCRYPTED\n",
        b"kind: Config\n",
        b"client-certificate-data: ",
        b"client-key: /etc/kubernetes/pki/ca.key\n",
        b"certificate-authority: ",
        b"\"hosts\": [",
        b"{\"CN\": ",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
    ],
    run: pem_scan,
    known: &[],
};

// ---- key_decode: the key decoders, the signing-key loader and the certificate decoder ----

const LABELS: &[&str] = &[
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "CERTIFICATE",
    "CERTIFICATE REQUEST",
];

fn key_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (_, b) in all_fixtures() {
        let Ok(text) = std::str::from_utf8(b) else {
            continue;
        };
        for block in pem::parse_many(text).unwrap_or_default() {
            let label = LABELS.iter().position(|l| *l == block.tag()).unwrap_or(0);
            out.push(with(label as u8, block.contents()));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn key_decode(input: &[u8]) -> Verdict {
    let (ctl, der) = split(input);
    let label = LABELS[ctl as usize % LABELS.len()];
    let encrypted = ctl >= 0xf0;
    let mut sig = String::new();
    match certs::pki::key::read_key_block(label, der, encrypted) {
        Ok(k) => sig.push_str(&format!("ok {:?} {}", k.format, k.algo.is_some())),
        Err(e) => sig.push_str(&shape(&e.to_string())),
    }
    match certs::issue::key::SigningKey::from_pem_block(label, der, encrypted) {
        Ok(k) => {
            // The public key it would put in a certificate must be a SubjectPublicKeyInfo.
            let spki = k.spki_der().map_err(|e| e.to_string())?;
            use x509_parser::prelude::FromDer;
            match x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki) {
                Ok(([], _)) => {}
                _ => {
                    return Err(format!(
                        "a loaded signing key's SPKI does not re-parse ({} bytes)",
                        spki.len()
                    ))
                }
            }
            sig.push_str(&format!("|sign {}", k.algo()));
        }
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    match certs::pki::cert::CertInfo::from_der(der) {
        Ok(c) => sig.push_str(&format!("|cert {} {}", c.is_ca, c.sans.is_empty())),
        Err(e) => sig.push_str(&format!("|{}", shape(&e.to_string()))),
    }
    Ok(sig)
}

pub const KEY_DECODE: Target = Target {
    name: "key_decode",
    about: "pki::key::read_key_block (PKCS#1, SEC1, PKCS#8, SPKI), issue::key::SigningKey::from_pem_block, pki::cert::CertInfo::from_der on DER",
    seeds: key_seeds,
    dict: &[b"\x30\x82", b"\x02\x01\x00", b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01", b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", b"\x03\x42\x00\x04", b"\xa0\x03\x02\x01\x02", b"\x05\x00"],
    run: key_decode,
    known: &[],
};
