//! Writes the benchmark corpus: a fleet of kubeadm backups of one cluster.
//!
//! ```text
//! cargo run --release --example bench-corpus -- OUT_DIR [--backups N]
//! ```
//!
//! `OUT_DIR` must not exist or be empty. It receives N (default 1000) directories
//! `backup-NNNN/etc/kubernetes/pki/`, each holding the 10 certificates of a kubeadm control-plane
//! node and their private keys:
//!
//! ```text
//! ca.crt  front-proxy-ca.crt  etcd/ca.crt                                  (the three CAs)
//! apiserver.crt  apiserver-kubelet-client.crt  apiserver-etcd-client.crt   (signed by ca)
//! front-proxy-client.crt                                                   (by front-proxy-ca)
//! etcd/server.crt  etcd/peer.crt  etcd/healthcheck-client.crt              (by etcd/ca)
//! ```
//!
//! so 10 N certificate files and 10 N key files. The backups come from one cluster: the 13
//! RSA-2048 keys are generated once and are the same in every backup, as are the three CA
//! certificates (copies), while every backup's seven leaf certificates are re-issued with a
//! fresh random serial and a validity shifted by one hour per backup, so all `7 N + 3` distinct
//! certificates differ. Keys are written as PKCS#1 (`RSA PRIVATE KEY`) like kubeadm writes them.
//! Everything is valid on 2030-01-01, the instant `bench/inspect.sh` passes as `--now`.
#![allow(clippy::disallowed_methods)] // a test/generator program: std::fs and processes directly

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose as Eku, IsCa, Issuer, KeyPair, KeyUsagePurpose, RsaKeySize, SanType,
    SerialNumber, PKCS_RSA_SHA256,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const DEFAULT_BACKUPS: usize = 1000;
const CA_NOT_BEFORE: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
const CA_NOT_AFTER: OffsetDateTime = datetime!(2035-01-01 0:00 UTC);
/// Leaves of backup `i` are valid from this plus `i` hours, for eight years.
const LEAF_NOT_BEFORE: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
const LEAF_LIFETIME: Duration = Duration::days(8 * 365);

const NODE: &str = "master1";
const NODE_IP: &str = "10.21.22.73";

const SERVER: &[Eku] = &[Eku::ServerAuth];
const CLIENT: &[Eku] = &[Eku::ClientAuth];
const BOTH: &[Eku] = &[Eku::ServerAuth, Eku::ClientAuth];

/// Which of the three CAs signs a leaf.
#[derive(Clone, Copy)]
enum CaId {
    Kubernetes,
    FrontProxy,
    Etcd,
}

/// The three CAs: (file under pki/, common name).
const CAS: [(CaId, &str, &str); 3] = [
    (CaId::Kubernetes, "ca", "kubernetes"),
    (CaId::FrontProxy, "front-proxy-ca", "front-proxy-ca"),
    (CaId::Etcd, "etcd/ca", "etcd-ca"),
];

/// A kubeadm leaf certificate: file under pki/ (without `.crt`), issuer, CN, O, SANs, EKUs.
struct LeafSpec {
    file: &'static str,
    ca: CaId,
    cn: &'static str,
    org: Option<&'static str>,
    dns: &'static [&'static str],
    ips: &'static [&'static str],
    usages: &'static [Eku],
}

const LEAVES: [LeafSpec; 7] = [
    LeafSpec {
        file: "apiserver",
        ca: CaId::Kubernetes,
        cn: "kube-apiserver",
        org: None,
        dns: &[
            NODE,
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ips: &["10.96.0.1", NODE_IP],
        usages: SERVER,
    },
    LeafSpec {
        file: "apiserver-kubelet-client",
        ca: CaId::Kubernetes,
        cn: "kube-apiserver-kubelet-client",
        org: Some("kubeadm:cluster-admins"),
        dns: &[],
        ips: &[],
        usages: CLIENT,
    },
    LeafSpec {
        file: "apiserver-etcd-client",
        ca: CaId::Etcd,
        cn: "kube-apiserver-etcd-client",
        org: None,
        dns: &[],
        ips: &[],
        usages: CLIENT,
    },
    LeafSpec {
        file: "front-proxy-client",
        ca: CaId::FrontProxy,
        cn: "front-proxy-client",
        org: None,
        dns: &[],
        ips: &[],
        usages: CLIENT,
    },
    LeafSpec {
        file: "etcd/server",
        ca: CaId::Etcd,
        cn: NODE,
        org: None,
        dns: &[NODE, "localhost"],
        ips: &[NODE_IP, "127.0.0.1", "::1"],
        usages: BOTH,
    },
    LeafSpec {
        file: "etcd/peer",
        ca: CaId::Etcd,
        cn: NODE,
        org: None,
        dns: &[NODE, "localhost"],
        ips: &[NODE_IP, "127.0.0.1", "::1"],
        usages: BOTH,
    },
    LeafSpec {
        file: "etcd/healthcheck-client",
        ca: CaId::Etcd,
        cn: "kube-etcd-healthcheck-client",
        org: None,
        dns: &[],
        ips: &[],
        usages: CLIENT,
    },
];

/// A key pair and the PKCS#1 PEM written for it.
struct Key {
    pair: KeyPair,
    pem: String,
}

/// A CA: the PEM copied into every backup, its key's PEM, and the rcgen signer.
struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn main() {
    let (out, backups) = parse_args();
    prepare_out_dir(&out);
    let started = Instant::now();

    let cas: Vec<Ca> = CAS.iter().map(|&(_, _, cn)| new_ca(cn)).collect();
    let leaf_keys: Vec<Key> = LEAVES.iter().map(|_| rsa_key()).collect();
    let keygen = started.elapsed();

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (cas, leaf_keys, out) = (&cas, &leaf_keys, &out);
            s.spawn(move || {
                for i in (t..backups).step_by(threads) {
                    write_backup(out, i, cas, leaf_keys);
                }
            });
        }
    });

    let total = started.elapsed();
    println!(
        "bench-corpus: wrote {backups} backups ({} certificate files, {} key files) to {} \
         in {:.1}s (13 RSA-2048 keys: {:.1}s; signing and writing: {:.1}s on {threads} threads)",
        backups * 10,
        backups * 10,
        out.display(),
        total.as_secs_f64(),
        keygen.as_secs_f64(),
        (total - keygen).as_secs_f64(),
    );
}

fn parse_args() -> (PathBuf, usize) {
    const USAGE: &str = "usage: bench-corpus OUT_DIR [--backups N]";
    let mut out = None;
    let mut backups = DEFAULT_BACKUPS;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--backups" => {
                let n = args.next().unwrap_or_else(|| fail(USAGE));
                backups = match n.parse() {
                    Ok(n) if n > 0 && n <= 9999 => n,
                    _ => fail(&format!("--backups: expected 1..=9999, got `{n}`")),
                };
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ if out.is_none() && !arg.starts_with('-') => out = Some(PathBuf::from(arg)),
            _ => fail(USAGE),
        }
    }
    (out.unwrap_or_else(|| fail(USAGE)), backups)
}

fn fail(message: &str) -> ! {
    eprintln!("bench-corpus: {message}");
    std::process::exit(2);
}

/// Creates `out`, refusing one that already holds something (nothing stale may survive).
fn prepare_out_dir(out: &Path) {
    if out.exists() {
        let mut entries =
            fs::read_dir(out).unwrap_or_else(|e| fail(&format!("reading {}: {e}", out.display())));
        if entries.next().is_some() {
            fail(&format!("{} is not empty; remove it first", out.display()));
        }
    }
    fs::create_dir_all(out).unwrap_or_else(|e| fail(&format!("mkdir {}: {e}", out.display())));
}

/// Backup `i`: the CA copies, the shared keys, and freshly issued leaves.
fn write_backup(out: &Path, i: usize, cas: &[Ca], leaf_keys: &[Key]) {
    let pki = out.join(format!("backup-{i:04}/etc/kubernetes/pki"));
    for (ca, &(_, file, _)) in cas.iter().zip(&CAS) {
        write_file(&pki.join(format!("{file}.crt")), &ca.cert_pem, 0o644);
        write_file(&pki.join(format!("{file}.key")), &ca.key_pem, 0o600);
    }
    let shift = Duration::hours(i as i64);
    for (spec, key) in LEAVES.iter().zip(leaf_keys) {
        let ca = &cas[spec.ca as usize];
        let cert = leaf_params(spec, LEAF_NOT_BEFORE + shift)
            .signed_by(&key.pair, &ca.issuer)
            .unwrap_or_else(|e| panic!("signing {}: {e}", spec.file));
        write_file(&pki.join(format!("{}.crt", spec.file)), cert.pem(), 0o644);
        write_file(&pki.join(format!("{}.key", spec.file)), &key.pem, 0o600);
    }
}

fn new_ca(cn: &str) -> Ca {
    let key = rsa_key();
    let mut params = CertificateParams::default();
    params.not_before = CA_NOT_BEFORE;
    params.not_after = CA_NOT_AFTER;
    params.serial_number = Some(random_serial());
    params.distinguished_name = subject(cn, None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    let cert = params
        .self_signed(&key.pair)
        .unwrap_or_else(|e| panic!("self-signing CA {cn}: {e}"));
    Ca {
        cert_pem: cert.pem(),
        key_pem: key.pem,
        issuer: Issuer::new(params, key.pair),
    }
}

fn leaf_params(spec: &LeafSpec, not_before: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.not_before = not_before;
    params.not_after = not_before + LEAF_LIFETIME;
    params.serial_number = Some(random_serial());
    params.distinguished_name = subject(spec.cn, spec.org);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = spec.usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    params.subject_alt_names = spec
        .dns
        .iter()
        .map(|d| SanType::DnsName((*d).try_into().expect("DNS SAN")))
        .chain(
            spec.ips
                .iter()
                .map(|ip| SanType::IpAddress(ip.parse::<IpAddr>().expect("IP SAN"))),
        )
        .collect();
    params
}

/// `O=<org>, CN=<cn>` in Go's pkix order; PrintableString where the value allows it.
fn subject(cn: &str, org: Option<&str>) -> DistinguishedName {
    let value = |s: &str| match PrintableString::try_from(s) {
        Ok(p) => DnValue::PrintableString(p),
        Err(_) => DnValue::Utf8String(s.to_owned()),
    };
    let mut dn = DistinguishedName::new();
    if let Some(org) = org {
        dn.push(DnType::OrganizationName, value(org));
    }
    dn.push(DnType::CommonName, value(cn));
    dn
}

/// Random positive 16-byte serial (top bit clear, next bit set so it stays 16 bytes).
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("reading random bytes for a serial");
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// RSA 2048 written as PKCS#1 (`RSA PRIVATE KEY`), as kubeadm writes it.
fn rsa_key() -> Key {
    let pair = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
        .expect("generating an RSA 2048 key");
    let pkcs1 = pkcs8_to_pkcs1(pair.serialized_der());
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let pem = pem::encode_config(&pem::Pem::new("RSA PRIVATE KEY", pkcs1), config);
    Key { pair, pem }
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RustCrypto's pkcs8 reads it).
fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Vec<u8> {
    use pkcs8::der::Decode;
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8).expect("rcgen writes valid PKCS#8");
    assert_eq!(
        info.algorithm.oid.to_string(),
        "1.2.840.113549.1.1.1",
        "PKCS#8 key is not rsaEncryption"
    );
    info.private_key.as_bytes().to_vec()
}

fn write_file(path: &Path, contents: impl AsRef<[u8]>, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
