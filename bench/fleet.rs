//! Writes the FLEET corpus `bench/fleet.sh` measures: many kubeadm clusters, each with its own
//! CAs under kubeadm's names, as full node trees.
//!
//! ```text
//! cargo run --release --example bench-fleet -- OUT_DIR --clusters N [--keys KEY_DIR]
//! ```
//!
//! `OUT_DIR` must not exist or be empty. It receives `cluster-NNNN/` for N clusters, each with
//! two node trees:
//!
//! ```text
//! cp/etc/kubernetes/pki/         ca, front-proxy-ca, etcd/ca and the 7 kubeadm leaves (.crt
//!                                 + PKCS#1 .key), sa.key, sa.pub
//! cp/etc/kubernetes/*.conf       admin, super-admin, controller-manager, scheduler: client
//!                                 certificate, key and CA embedded (`*-data`), as kubeadm writes
//! cp/etc/kubernetes/manifests/   etcd, kube-apiserver, kube-controller-manager, kube-scheduler
//!                                 (the static pod manifests of fixtures/kubeadm)
//! cp/var/lib/kubelet/kubeconfig  the kubelet's kubeconfig: CA embedded, client certificate and
//!                                 key by file reference (`pki/kubelet-client-current.pem`)
//! cp/var/lib/kubelet/pki/        kubelet-client-current.pem (cert + P-256 SEC1 key),
//!                                 kubelet.crt (self-signed serving leaf, then its own CA
//!                                 `<node>-ca@<unix>`), kubelet.key
//! worker/etc/kubernetes/pki/ca.crt            the cluster CA, as `kubeadm join` copies it
//! worker/var/lib/kubelet/kubeconfig           as on cp/
//! worker/var/lib/kubelet/pki/                 kubelet-client-current.pem and, with
//!                                             serverTLSBootstrap, kubelet-server-current.pem
//!                                             (signed by the cluster CA; P-256 keys)
//! ```
//!
//! 20 certificates per cluster (17 on the control-plane node, as in fixtures/kubeadm, 3 on the
//! worker), 38 files. The kubelet kubeconfigs reference their files relative to themselves, so
//! that the node trees of a whole fleet resolve without `--root`.
//!
//! Every cluster's `ca`, `etcd-ca` and `front-proxy-ca` have the same subjects as every other
//! cluster's (kubeadm's names) and keys of their own. RSA-2048 key generation costs about 0.1 s
//! a key here, so keys come from a pool kept in KEY_DIR (default `OUT_DIR/../fleet-keys`),
//! generated once and reused: N CA keys, cluster i's `ca`, `front-proxy-ca` and `etcd-ca`
//! taking keys i, i+1 and i+2 (mod N), so that no two CAs of one name (and no two CAs of one
//! cluster) share a key; and 32 keys for the RSA leaves (kubeadm's leaves, the kubeconfig users,
//! kubelet.crt and its CA, sa.key), assigned so that no two leaves of one cluster share a key
//! while every pool key recurs across clusters. The kubelet's client and serving certificates
//! get fresh P-256 keys, as kubelet makes them.
//! Everything is valid on 2030-01-01, the instant `bench/fleet.sh` passes as `--now`.
#![allow(clippy::disallowed_methods)] // a generator program: std::fs directly

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rcgen::string::PrintableString;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose as Eku, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_RSA_SHA256,
};
use time::macros::datetime;
use time::OffsetDateTime;

const CA_NOT_BEFORE: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
const CA_NOT_AFTER: OffsetDateTime = datetime!(2035-01-01 0:00 UTC);
const LEAF_NOT_BEFORE: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);
const LEAF_NOT_AFTER: OffsetDateTime = datetime!(2034-12-31 0:00 UTC);
/// The "@<unix>" of kubelet's self-signed names: 2025-01-01, plus one second per cluster.
const KUBELET_CERT_UNIX: usize = 1_735_689_600;
/// RSA keys shared by the leaves of all clusters.
const LEAF_POOL: usize = 32;

const SERVER: &[Eku] = &[Eku::ServerAuth];
const CLIENT: &[Eku] = &[Eku::ClientAuth];
const BOTH: &[Eku] = &[Eku::ServerAuth, Eku::ClientAuth];

const MANIFESTS: [(&str, &str); 4] = [
    (
        "etcd.yaml",
        include_str!("../fixtures/kubeadm/etc/kubernetes/manifests/etcd.yaml"),
    ),
    (
        "kube-apiserver.yaml",
        include_str!("../fixtures/kubeadm/etc/kubernetes/manifests/kube-apiserver.yaml"),
    ),
    (
        "kube-controller-manager.yaml",
        include_str!("../fixtures/kubeadm/etc/kubernetes/manifests/kube-controller-manager.yaml"),
    ),
    (
        "kube-scheduler.yaml",
        include_str!("../fixtures/kubeadm/etc/kubernetes/manifests/kube-scheduler.yaml"),
    ),
];

/// A key pair and the PEM written for it.
struct Key {
    pair: KeyPair,
    pem: String,
}

struct Ca {
    pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn main() {
    let (out, clusters, key_dir) = parse_args();
    prepare_out_dir(&out);
    let key_dir =
        key_dir.unwrap_or_else(|| out.parent().unwrap_or(Path::new(".")).join("fleet-keys"));
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (ca_keys, leaf_keys, generated) = key_pool(&key_dir, clusters.max(3), threads);
    let keys_done = started.elapsed();

    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= clusters {
                    break;
                }
                let n = ca_keys.len();
                let cas = [&ca_keys[i], &ca_keys[(i + 1) % n], &ca_keys[(i + 2) % n]];
                write_cluster(&out, i, cas, &leaf_keys);
            });
        }
    });
    let total = started.elapsed();
    println!(
        "bench-fleet: wrote {clusters} clusters ({} certificates, {} files) to {} in {:.1}s \
         (RSA key pool {}: {generated} keys generated in {:.1}s; certificates and files: {:.1}s \
         on {threads} threads)",
        clusters * 20,
        clusters * 38,
        out.display(),
        total.as_secs_f64(),
        key_dir.display(),
        keys_done.as_secs_f64(),
        (total - keys_done).as_secs_f64(),
    );
}

fn parse_args() -> (PathBuf, usize, Option<PathBuf>) {
    const USAGE: &str = "usage: bench-fleet OUT_DIR --clusters N [--keys KEY_DIR]";
    let (mut out, mut clusters, mut keys) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--clusters" => {
                let n = args.next().unwrap_or_else(|| fail(USAGE));
                clusters = match n.parse() {
                    Ok(n) if (1..=9999).contains(&n) => Some(n),
                    _ => fail(&format!("--clusters: expected 1..=9999, got `{n}`")),
                };
            }
            "--keys" => keys = Some(PathBuf::from(args.next().unwrap_or_else(|| fail(USAGE)))),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ if out.is_none() && !arg.starts_with('-') => out = Some(PathBuf::from(arg)),
            _ => fail(USAGE),
        }
    }
    let out = out.unwrap_or_else(|| fail(USAGE));
    (out, clusters.unwrap_or_else(|| fail(USAGE)), keys)
}

fn fail(message: &str) -> ! {
    eprintln!("bench-fleet: {message}");
    std::process::exit(2);
}

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

/// `ca_count` CA keys and the leaf pool, read from `dir` or generated (and saved) when missing.
fn key_pool(dir: &Path, ca_count: usize, threads: usize) -> (Vec<Key>, Vec<Key>, usize) {
    fs::create_dir_all(dir).unwrap_or_else(|e| fail(&format!("mkdir {}: {e}", dir.display())));
    let names: Vec<PathBuf> = (0..ca_count)
        .map(|i| dir.join(format!("ca-{i:05}.key")))
        .chain((0..LEAF_POOL).map(|i| dir.join(format!("leaf-{i:02}.key"))))
        .collect();
    let generated = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let mut keys: Vec<(usize, Key)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut got = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = names.get(i) else { break };
                        got.push((i, load_or_generate(path, &generated)));
                    }
                    got
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("key pool thread"))
            .collect()
    });
    keys.sort_by_key(|(i, _)| *i);
    let mut keys: Vec<Key> = keys.into_iter().map(|(_, k)| k).collect();
    let leaves = keys.split_off(ca_count);
    (keys, leaves, generated.into_inner())
}

/// An RSA-2048 key saved as PKCS#8 PEM in the pool; written as PKCS#1 into the trees.
fn load_or_generate(path: &Path, generated: &AtomicUsize) -> Key {
    let pair = match fs::read_to_string(path) {
        Ok(pem) => KeyPair::from_pem(&pem)
            .unwrap_or_else(|e| fail(&format!("{}: {e} (remove the key pool)", path.display()))),
        Err(_) => {
            let pair = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .expect("generating an RSA 2048 key");
            let tmp = path.with_extension("tmp");
            write_file(&tmp, pair.serialize_pem(), 0o600);
            fs::rename(&tmp, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            generated.fetch_add(1, Ordering::Relaxed);
            pair
        }
    };
    let pem = pem_block("RSA PRIVATE KEY", pkcs8_to_pkcs1(pair.serialized_der()));
    Key { pair, pem }
}

/// A fresh P-256 key, SEC1 (`EC PRIVATE KEY`) as kubelet's certificate manager writes it.
fn ec_key() -> Key {
    let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("a P-256 key");
    let sec1 = ec.private_key().as_der().expect("P-256 key as SEC1");
    let pkcs8 = ec.to_pkcs8v1().expect("P-256 key as PKCS#8");
    let pair = KeyPair::try_from(pkcs8.as_ref()).expect("P-256 key into rcgen");
    Key {
        pem: pem_block("EC PRIVATE KEY", sec1.as_ref().to_vec()),
        pair,
    }
}

/// Cluster `i`: a control-plane node and a worker.
fn write_cluster(out: &Path, i: usize, ca_keys: [&Key; 3], pool: &[Key]) {
    let root = out.join(format!("cluster-{i:04}"));
    let cp_name = format!("c{i:04}-cp1");
    let worker_name = format!("c{i:04}-w1");
    let (cp_ip, worker_ip) = (
        format!("10.{}.{}.10", i / 250, i % 250),
        format!("10.{}.{}.20", i / 250, i % 250),
    );
    let server = format!("https://{cp_ip}:6443");
    // Leaf slot s of cluster i: pool key (7 i + s) mod 32, distinct within the cluster.
    let mut slot = 0;
    let mut leaf_key = || {
        let k = &pool[(7 * i + slot) % pool.len()];
        slot += 1;
        k
    };

    let etc = root.join("cp/etc/kubernetes");
    let pki = etc.join("pki");
    let ca = new_ca(&pki, "ca", "kubernetes", ca_keys[0]);
    let front_proxy_ca = new_ca(&pki, "front-proxy-ca", "front-proxy-ca", ca_keys[1]);
    let etcd_ca = new_ca(&pki, "etcd/ca", "etcd-ca", ca_keys[2]);

    let apiserver_dns = [
        cp_name.as_str(),
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ];
    let apiserver_ips = ["10.96.0.1", cp_ip.as_str()];
    let etcd_dns = [cp_name.as_str(), "localhost"];
    let etcd_ips = [cp_ip.as_str(), "127.0.0.1", "::1"];
    let leaves: [(&str, &Ca, Leaf); 7] = [
        (
            "apiserver",
            &ca,
            Leaf::new("kube-apiserver", SERVER).sans(&apiserver_dns, &apiserver_ips),
        ),
        (
            "apiserver-kubelet-client",
            &ca,
            Leaf::new("kube-apiserver-kubelet-client", CLIENT).org("kubeadm:cluster-admins"),
        ),
        (
            "front-proxy-client",
            &front_proxy_ca,
            Leaf::new("front-proxy-client", CLIENT),
        ),
        (
            "etcd/server",
            &etcd_ca,
            Leaf::new(&cp_name, BOTH).sans(&etcd_dns, &etcd_ips),
        ),
        (
            "etcd/peer",
            &etcd_ca,
            Leaf::new(&cp_name, BOTH).sans(&etcd_dns, &etcd_ips),
        ),
        (
            "etcd/healthcheck-client",
            &etcd_ca,
            Leaf::new("kube-etcd-healthcheck-client", CLIENT),
        ),
        (
            "apiserver-etcd-client",
            &etcd_ca,
            Leaf::new("kube-apiserver-etcd-client", CLIENT),
        ),
    ];
    for (name, issuer, leaf) in &leaves {
        let key = leaf_key();
        let cert = sign(issuer, leaf, &key.pair);
        write_file(&pki.join(format!("{name}.crt")), cert.pem(), 0o644);
        write_file(&pki.join(format!("{name}.key")), &key.pem, 0o600);
    }
    let sa = leaf_key();
    write_file(&pki.join("sa.key"), &sa.pem, 0o600);
    write_file(&pki.join("sa.pub"), sa.pair.public_key_pem(), 0o644);

    for (file, user, org) in [
        (
            "admin.conf",
            "kubernetes-admin",
            Some("kubeadm:cluster-admins"),
        ),
        (
            "super-admin.conf",
            "kubernetes-super-admin",
            Some("system:masters"),
        ),
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            None,
        ),
        ("scheduler.conf", "system:kube-scheduler", None),
    ] {
        let mut leaf = Leaf::new(user, CLIENT);
        if let Some(org) = org {
            leaf = leaf.org(org);
        }
        let key = leaf_key();
        let cert = sign(&ca, &leaf, &key.pair);
        let creds = Credentials::Embedded {
            cert_pem: &cert.pem(),
            key_pem: &key.pem,
        };
        let conf = kubeconfig(&server, &ca.pem, user, creds);
        write_file(&etc.join(file), conf, 0o600);
    }
    for (name, body) in MANIFESTS {
        write_file(&etc.join("manifests").join(name), body, 0o600);
    }

    // Control-plane kubelet: rotated client cert, and the self-signed serving cert.
    let kubelet = root.join("cp/var/lib/kubelet");
    write_kubelet_client(&kubelet, &cp_name, &ca, &server);
    let unix = KUBELET_CERT_UNIX + i;
    let kubelet_ca_key = leaf_key();
    let kubelet_ca_params = ca_params(&format!("{cp_name}-ca@{unix}"));
    let kubelet_ca_cert = kubelet_ca_params
        .self_signed(&kubelet_ca_key.pair)
        .expect("self-signing kubelet's CA");
    let kubelet_ca = Ca {
        pem: kubelet_ca_cert.pem(),
        key_pem: String::new(),
        issuer: Issuer::new(kubelet_ca_params, clone_key(kubelet_ca_key)),
    };
    let serving_key = leaf_key();
    let serving_cn = format!("{cp_name}@{unix}");
    let serving_dns = [cp_name.as_str()];
    let serving = sign(
        &kubelet_ca,
        &Leaf::new(&serving_cn, SERVER).sans(&serving_dns, &[]),
        &serving_key.pair,
    );
    write_file(
        &kubelet.join("pki/kubelet.crt"),
        serving.pem() + &kubelet_ca.pem,
        0o644,
    );
    write_file(&kubelet.join("pki/kubelet.key"), &serving_key.pem, 0o600);

    // Worker: the CA `kubeadm join` copies, the kubelet's client and (serverTLSBootstrap)
    // serving certificates.
    let worker = root.join("worker");
    write_file(&worker.join("etc/kubernetes/pki/ca.crt"), &ca.pem, 0o644);
    let kubelet = worker.join("var/lib/kubelet");
    write_kubelet_client(&kubelet, &worker_name, &ca, &server);
    let key = ec_key();
    let node = format!("system:node:{worker_name}");
    let worker_dns = [worker_name.as_str()];
    let worker_ips = [worker_ip.as_str()];
    let cert = sign(
        &ca,
        &Leaf::new(&node, SERVER)
            .org("system:nodes")
            .sans(&worker_dns, &worker_ips),
        &key.pair,
    );
    write_file(
        &kubelet.join("pki/kubelet-server-current.pem"),
        cert.pem() + &key.pem,
        0o600,
    );
}

/// `pki/kubelet-client-current.pem` (cert + P-256 key) and the kubeconfig that references it.
fn write_kubelet_client(kubelet: &Path, node_name: &str, ca: &Ca, server: &str) {
    let node = format!("system:node:{node_name}");
    let key = ec_key();
    let cert = sign(ca, &Leaf::new(&node, CLIENT).org("system:nodes"), &key.pair);
    write_file(
        &kubelet.join("pki/kubelet-client-current.pem"),
        cert.pem() + &key.pem,
        0o600,
    );
    let current = "pki/kubelet-client-current.pem";
    let creds = Credentials::Files {
        cert: current,
        key: current,
    };
    write_file(
        &kubelet.join("kubeconfig"),
        kubeconfig(server, &ca.pem, &node, creds),
        0o600,
    );
}

fn clone_key(key: &Key) -> KeyPair {
    KeyPair::try_from(key.pair.serialized_der()).expect("reloading a pool key")
}

fn new_ca(pki: &Path, name: &str, cn: &str, key: &Key) -> Ca {
    let params = ca_params(cn);
    let cert = params
        .self_signed(&key.pair)
        .unwrap_or_else(|e| panic!("self-signing CA {cn}: {e}"));
    let ca = Ca {
        pem: cert.pem(),
        key_pem: key.pem.clone(),
        issuer: Issuer::new(params, clone_key(key)),
    };
    write_file(&pki.join(format!("{name}.crt")), &ca.pem, 0o644);
    write_file(&pki.join(format!("{name}.key")), &ca.key_pem, 0o600);
    ca
}

fn ca_params(cn: &str) -> CertificateParams {
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
    params
}

/// What a leaf says; KU, SKI/AKI, serial and validity are uniform.
struct Leaf<'a> {
    cn: &'a str,
    org: Option<&'a str>,
    dns: &'a [&'a str],
    ips: &'a [&'a str],
    usages: &'a [Eku],
}

impl<'a> Leaf<'a> {
    fn new(cn: &'a str, usages: &'a [Eku]) -> Self {
        Leaf {
            cn,
            org: None,
            dns: &[],
            ips: &[],
            usages,
        }
    }

    fn org(self, org: &'a str) -> Self {
        Leaf {
            org: Some(org),
            ..self
        }
    }

    fn sans(self, dns: &'a [&'a str], ips: &'a [&'a str]) -> Self {
        Leaf { dns, ips, ..self }
    }

    fn params(&self) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.not_before = LEAF_NOT_BEFORE;
        params.not_after = LEAF_NOT_AFTER;
        params.serial_number = Some(random_serial());
        params.distinguished_name = subject(self.cn, self.org);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = self.usages.to_vec();
        params.use_authority_key_identifier_extension = true;
        params.subject_alt_names = self
            .dns
            .iter()
            .map(|d| SanType::DnsName((*d).try_into().expect("DNS SAN")))
            .chain(
                self.ips
                    .iter()
                    .map(|ip| SanType::IpAddress(ip.parse::<IpAddr>().expect("IP SAN"))),
            )
            .collect();
        params
    }
}

fn sign(ca: &Ca, leaf: &Leaf, key: &KeyPair) -> Certificate {
    leaf.params()
        .signed_by(key, &ca.issuer)
        .unwrap_or_else(|e| panic!("signing {}: {e}", leaf.cn))
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

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("reading random bytes for a serial");
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

enum Credentials<'a> {
    Embedded { cert_pem: &'a str, key_pem: &'a str },
    Files { cert: &'a str, key: &'a str },
}

/// A kubeconfig in the shape kubeadm writes (keys sorted, `preferences: {}`).
fn kubeconfig(server: &str, ca_pem: &str, user: &str, creds: Credentials) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let user_fields = match creds {
        Credentials::Embedded { cert_pem, key_pem } => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(cert_pem),
            b64(key_pem)
        ),
        Credentials::Files { cert, key } => {
            format!("    client-certificate: {cert}\n    client-key: {key}\n")
        }
    };
    format!(
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: {user}
  name: {user}@kubernetes
current-context: {user}@kubernetes
kind: Config
preferences: {{}}
users:
- name: {user}
  user:
{user_fields}",
        ca = b64(ca_pem),
    )
}

fn pem_block(tag: &str, der: Vec<u8>) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(tag, der), config)
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_to_pkcs1(pkcs8: &[u8]) -> Vec<u8> {
    use pkcs8::der::Decode;
    let info = pkcs8::PrivateKeyInfoRef::from_der(pkcs8).expect("rcgen writes valid PKCS#8");
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
