//! The etcd CA of a REAL three-member TLS etcd (tests/cli/etcd/: members on 127.0.0.11-13,
//! node roots whose `etcd.service` the members run from) rotated through the three stages with
//! `certs rotate-ca` and `certs rollout apply` on each node root, stage by stage on every node,
//! while a client that reads node 1's CA file (and its client certificate) on every call writes
//! all along: no write fails; at the end every member serves a certificate that verifies
//! against the new CA and not the old, refuses a client of the old CA, and no file of any node
//! holds the old CA.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use certs::sys::tls::{https_request, probe, ProbeOptions, Target};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::s;
use super::stages::files_holding;
use crate::etcd::{EtcdCluster, Form, MEMBERS, NODE_PKI};
use crate::util::{certs, fixture, Run};

/// The CA file, client certificate and key of node 1, read now.
pub(super) fn options(pki: &Path) -> Result<ProbeOptions, String> {
    let read = |f: &str| std::fs::read(pki.join(f)).map_err(|e| format!("{f}: {e}"));
    let blocks = |f: &str| -> Result<Vec<pem::Pem>, String> {
        pem::parse_many(read(f)?).map_err(|e| format!("{f}: {e}"))
    };
    let roots: Vec<CertificateDer<'static>> = blocks("ca.pem")?
        .into_iter()
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    let cert = blocks("admin-etcd1.pem")?.remove(0);
    let key = blocks("admin-etcd1-key.pem")?.remove(0);
    let key = match key.tag() {
        "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(key.into_contents().into()),
        "EC PRIVATE KEY" => PrivateKeyDer::Sec1(key.into_contents().into()),
        _ => PrivateKeyDer::Pkcs8(key.into_contents().into()),
    };
    Ok(ProbeOptions {
        roots: Some(roots),
        timeout: Duration::from_secs(1),
        client_identity: Some((vec![CertificateDer::from(cert.into_contents())], key)),
        ..Default::default()
    })
}

fn endpoints() -> Vec<Target> {
    (1..=MEMBERS)
        .map(|n| format!("https://127.0.0.1{n}:2379").parse().unwrap())
        .collect()
}

/// One put, trying each member in turn for at most 2 s; node 1's files read for this call.
fn put(pki: &Path, key: &str, first: usize) -> Result<(), String> {
    let body = serde_json::json!({"key": B64.encode(key), "value": B64.encode(key)}).to_string();
    let deadline = Instant::now() + Duration::from_secs(2);
    let targets = endpoints();
    let mut errors = Vec::new();
    let mut i = first;
    while Instant::now() < deadline {
        let opts = options(pki)?;
        let t = &targets[i % targets.len()];
        match https_request(t, "POST", "/v3/kv/put", Some(body.as_bytes()), &opts) {
            Ok(r) if r.status == 200 => return Ok(()),
            Ok(r) => errors.push(format!("{t}: HTTP {}", r.status)),
            Err(e) => errors.push(format!("{t}: {e}")),
        }
        i += 1;
        if i % targets.len() == first % targets.len() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Err(errors.join("; "))
}

/// Writes a fresh key every ~20 ms until stopped: (writes that succeeded, failures).
pub(super) struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(usize, Vec<String>)>,
}

impl Writer {
    pub(super) fn start(pki: PathBuf) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0, Vec::new());
            let mut seq = 0usize;
            while !flag.load(Ordering::SeqCst) {
                seq += 1;
                match put(&pki, &format!("/rotate-ca/{seq:06}"), seq) {
                    Ok(()) => ok += 1,
                    Err(e) => failed.push(format!("write {seq}: {e}")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (ok, failed)
        });
        Writer { stop, handle }
    }

    pub(super) fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// What member `n` serves on its client port, as PEM in `dir`.
pub(super) fn served(n: usize, pki: &Path, dir: &Path) -> PathBuf {
    let mut opts = options(pki).unwrap();
    opts.insecure = true;
    opts.roots = None;
    opts.timeout = Duration::from_secs(5);
    let found = probe(&endpoints()[n - 1], &opts).unwrap();
    let file = dir.join(format!("served-{n}.pem"));
    let pem = pem::encode(&pem::Pem::new(
        "CERTIFICATE",
        found.leaf().unwrap().to_vec(),
    ));
    std::fs::write(&file, pem).unwrap();
    file
}

#[test]
fn the_etcd_ca_of_a_real_cluster_rotates_through_every_stage_without_a_failed_write() {
    let src = fixture("etcd-loopback");
    let cluster = EtcdCluster::start_nodes(&src.path().join(NODE_PKI), Form::Flags);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let old = w.join("old-ca.pem");
    std::fs::copy(cluster.node_pki(1).join("ca.pem"), &old).unwrap();
    let (new_ca, new_key) = (
        w.join("trust-1-new-ca/ca.pem"),
        w.join("trust-1-new-ca/ca-key.pem"),
    );
    let root = |n: usize| s(cluster.node_root(n));
    let run = |args: Vec<String>| -> Run {
        let r = certs(&args);
        assert_eq!(
            r.code,
            0,
            "{args:?}: {}{}\n{}",
            r.stdout,
            r.stderr,
            cluster.logs()
        );
        r
    };
    let apply = |bundle: &Path, n: usize, state: &str| {
        run(vec![
            "rollout".into(),
            "apply".into(),
            s(bundle),
            "--root".into(),
            root(n),
            "--state-dir".into(),
            s(&w.join(state)),
            "--health-interval".into(),
            "500ms".into(),
            "--health-timeout".into(),
            "60s".into(),
            "--restart-cmd".into(),
            format!("etcd={}", cluster.restart_cmd(n)),
        ]);
    };
    let stage = |verb: &str, n: usize, extra: &[String]| -> PathBuf {
        let out = w.join(format!("{verb}-{n}"));
        let mut args = vec![
            "rotate-ca".to_string(),
            verb.into(),
            s(&old),
            "--root".into(),
            root(n),
            "--out".into(),
            s(&out),
        ];
        args.extend(extra.iter().cloned());
        run(args);
        out
    };
    let status = |n: usize| -> String {
        let r = certs([
            "rotate-ca",
            "status",
            &s(&old),
            "--root",
            &root(n),
            "-o",
            "json",
        ]);
        r.json()["stage"].as_str().unwrap().to_string()
    };
    let with_key = vec![
        "--new-ca".to_string(),
        s(&new_ca),
        "--new-ca-key".into(),
        s(&new_key),
    ];

    let writer = Writer::start(cluster.node_pki(1));
    // trust: node 1 makes the new CA, the others are given it; installed everywhere first.
    for n in 1..=MEMBERS {
        let bundle = stage("trust", n, if n == 1 { &[] } else { &with_key });
        apply(&bundle, n, &format!("state-trust-{n}"));
    }
    for n in 1..=MEMBERS {
        assert_eq!(status(n), "trusted", "node {n}");
    }
    // switch, node by node: each member serves a leaf of the new CA, every node trusts both.
    for n in 1..=MEMBERS {
        let bundle = stage("switch", n, &with_key);
        apply(&bundle, n, &format!("state-switch-{n}"));
    }
    for n in 1..=MEMBERS {
        assert_eq!(status(n), "switched", "node {n}");
    }
    // finish, node by node.
    for n in 1..=MEMBERS {
        let bundle = stage("finish", n, &["--new-ca".to_string(), s(&new_ca)]);
        apply(&bundle, n, &format!("state-finish-{n}"));
    }
    let (ok, failed) = writer.stop();
    assert!(
        failed.is_empty(),
        "{} failed write(s): {failed:?}",
        failed.len()
    );
    assert!(ok > 20, "too few writes ({ok})");
    eprintln!("rotate-ca etcd: {ok} writes, 0 failed");

    let old_der = pem::parse(std::fs::read(&old).unwrap())
        .unwrap()
        .into_contents();
    for n in 1..=MEMBERS {
        assert_eq!(status(n), "finished", "node {n}");
        let leaf = served(n, &cluster.node_pki(1), w);
        assert!(
            super::verify(&new_ca, &leaf),
            "member {n} serves a leaf of the new CA"
        );
        assert!(!super::verify(&old, &leaf), "member {n}: not of the old CA");
        // The member reloaded its trust file: a client of the old CA is refused.
        let mut opts = options(&src.path().join(NODE_PKI)).unwrap();
        opts.roots = options(&cluster.node_pki(1)).unwrap().roots;
        let body = br#"{"key": "b2xk", "value": "b2xk"}"#;
        let r = https_request(&endpoints()[n - 1], "POST", "/v3/kv/put", Some(body), &opts);
        assert!(
            !matches!(&r, Ok(resp) if resp.status == 200),
            "member {n} still accepts a client certificate of the old CA"
        );
        assert_eq!(
            files_holding(cluster.node_root(n), &old_der),
            Vec::<PathBuf>::new(),
            "node {n}: no file holds the old CA"
        );
    }
}
