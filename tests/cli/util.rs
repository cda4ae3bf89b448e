//! The harness: run the real `certs` binary on copies of the fixtures, and ask openssl.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A path as a command-line argument (every test path is UTF-8).
pub fn s(p: &Path) -> String {
    s_ref(p).to_string()
}

/// The same, borrowed: for `[&str; N]` argument lists.
pub fn s_ref(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A private copy of `fixtures/<name>` in a temp dir: tests may break it as they like.
/// Git keeps no modes but the executable bit, so private keys and kubeconfigs get the 0600 they
/// have on a node (a fresh clone has them 0644).
pub fn fixture(name: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    copy_tree(&repo().join("fixtures").join(name), dir.path());
    for entry in walkdir::WalkDir::new(dir.path()) {
        let entry = entry.expect("walk copy");
        let secret = entry.file_type().is_file()
            && std::fs::read(entry.path()).is_ok_and(|b| {
                let text = String::from_utf8_lossy(&b);
                text.contains("PRIVATE KEY-----") || text.contains("client-key-data")
            });
        if secret {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk fixture");
        let rel = entry.path().strip_prefix(from).unwrap();
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The outcome of one run, with its streams as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn certs<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_certs"))
        .args(args)
        .output()
        .expect("run certs");
    run(out)
}

/// `certs ARGS` run from `dir`, for relative paths as operators type them.
pub fn certs_in<I, S>(dir: &Path, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(env!("CARGO_BIN_EXE_certs"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run certs");
    run(out)
}

/// `certs ARGS` with extra environment variables (set as given, the rest inherited). For a fake
/// command in front of the real ones, pass `("PATH", path_with(dir))`.
pub fn certs_env<I, S, K, V>(args: I, envs: &[(K, V)]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certs"));
    cmd.args(args);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    run(cmd.output().expect("run certs"))
}

/// The inherited PATH with `dir` in front.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(
        std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&inherited)),
    )
    .expect("a PATH entry with a colon")
}

fn run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `openssl ARGS`; panics with its stderr when it fails.
pub fn openssl<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (see README)");
    assert!(
        out.status.success(),
        "openssl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Go's x509 parser on a certificate file, through the real `cfssl certinfo -cert`: what
/// kube-apiserver and every Go client would make of it. Panics with cfssl's stderr when Go
/// cannot parse it; otherwise cfssl's JSON.
pub fn cfssl_certinfo(cert: &Path) -> Value {
    // cfssl wants one PEM object: the first certificate of a file that also holds a key or chain.
    let text = std::fs::read(cert).expect("read the certificate");
    let first = pem::parse_many(&text)
        .ok()
        .and_then(|b| b.into_iter().find(|b| b.tag() == "CERTIFICATE"))
        .expect("a PEM certificate");
    let one = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(one.path(), pem::encode(&first)).unwrap();
    let out = Command::new("cfssl")
        .args(["certinfo", "-cert"])
        .arg(one.path())
        .output()
        .expect("cfssl is installed (tests/debian.sh installs golang-cfssl)");
    assert!(
        out.status.success(),
        "Go's x509 cannot parse {}: {}",
        cert.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cfssl certinfo prints JSON")
}

/// Pinned instant for fixture runs, so statuses do not drift with the calendar.
pub const NOW: &str = "2026-06-01T00:00:00Z";

/// Every regular file under `dir` with its SHA-256: compared before and after to prove that a
/// command changed nothing.
pub fn tree_digest(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let bytes = std::fs::read(e.path()).unwrap();
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
            out.push((e.path().to_path_buf(), format!("{:?}", digest.as_ref())));
        }
    }
    out
}

/// Finds the certificate entry whose path ends with `suffix` (and is not embedded).
pub fn cert<'a>(report: &'a Value, suffix: &str) -> &'a Value {
    report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["path"].as_str().unwrap().ends_with(suffix)
                && c["embedded"].is_null()
                && c["index"] == 0
        })
        .unwrap_or_else(|| panic!("no certificate at *{suffix}"))
}

pub fn ends(v: &Value, suffix: &str) -> bool {
    v.as_str().is_some_and(|s| s.ends_with(suffix))
}

/// A real rustls TLS server on 127.0.0.1 serving `chain` (PEM file) with `key`, optionally
/// demanding client certificates signed by `client_ca`. Runs until the test process ends.
pub fn tls_server(chain: &Path, key: &Path, client_ca: Option<&Path>) -> std::net::SocketAddr {
    use std::sync::Arc;
    let certs = |p: &Path| certs::sys::tls::certs_from_pem(&std::fs::read(p).unwrap()).unwrap();
    let key_der = certs::sys::tls::key_from_pem(&std::fs::read(key).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(ca) {
                roots.add(c).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = Arc::new(builder.with_single_cert(certs(chain), key_der).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let Ok(mut conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                while conn.is_handshaking() {
                    if conn.complete_io(&mut stream).is_err() {
                        return;
                    }
                }
                let _ = conn.complete_io(&mut stream);
            });
        }
    });
    addr
}

/// `openssl x509 -noout -serial` of a file, without `serial=`.
pub fn file_serial(cert: &Path) -> String {
    openssl(["x509", "-noout", "-serial", "-in", s_ref(cert)])
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

/// SANs as openssl prints them, normalised into a set of `DNS:x` / `IP:y`.
pub fn openssl_sans(cert: &Path) -> std::collections::BTreeSet<String> {
    let out = openssl([
        "x509",
        "-in",
        s_ref(cert),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    out.lines()
        .nth(1)
        .map(|l| {
            l.split(", ")
                .map(|n| {
                    let n = n.trim();
                    match n.strip_prefix("IP Address:") {
                        Some(ip) => format!("IP:{}", ip.parse::<std::net::IpAddr>().unwrap()),
                        None => n.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes an executable script (a fake `systemctl`, a member's start script).
pub fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}
