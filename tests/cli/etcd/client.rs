//! The v3 JSON gateway client of the harness and the background load ([`ClientLoad`]) that
//! counts failed requests across restarts.

use super::*;

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// A v3 JSON gateway client with the admin identity and failover across the members.
#[derive(Clone)]
pub(super) struct Client {
    endpoints: Vec<Target>,
    pub(super) opts: ProbeOptions,
}

impl Client {
    pub(super) fn new(pki: &Path) -> Client {
        let block = |file: &str| -> pem::Pem {
            let path = pki.join(file);
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            pem::parse(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let ca = block("ca.pem");
        let cert = block("admin-etcd1.pem");
        let key = block("admin-etcd1-key.pem");
        assert_eq!(
            key.tag(),
            "RSA PRIVATE KEY",
            "admin-etcd1-key.pem is PKCS#1"
        );
        Client {
            endpoints: (1..=MEMBERS)
                .map(|n| {
                    format!("https://{}:{CLIENT_PORT}", ip(n))
                        .parse()
                        .expect("endpoint")
                })
                .collect(),
            opts: ProbeOptions {
                roots: Some(vec![CertificateDer::from(ca.into_contents())]),
                timeout: ATTEMPT_TIMEOUT,
                client_identity: Some((
                    vec![CertificateDer::from(cert.into_contents())],
                    PrivateKeyDer::Pkcs1(key.into_contents().into()),
                )),
                ..Default::default()
            },
        }
    }

    /// POSTs `body` to `path`, first on endpoint `first`, then on the next ones in turn until
    /// one answers 200 with JSON or [`REQUEST_BUDGET`] is spent.
    fn call(&self, path: &str, body: &Value, first: usize) -> Result<Value, String> {
        let body = body.to_string();
        let deadline = Instant::now() + REQUEST_BUDGET;
        let count = self.endpoints.len();
        let mut last_error: Vec<Option<String>> = vec![None; count];
        let mut i = first % count;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let errors: Vec<String> = last_error.into_iter().flatten().collect();
                return Err(format!(
                    "no member served it within {REQUEST_BUDGET:?}; last errors: {}",
                    errors.join("; ")
                ));
            }
            let mut opts = self.opts.clone();
            opts.timeout = ATTEMPT_TIMEOUT.min(left);
            let target = &self.endpoints[i];
            match https_request(target, "POST", path, Some(body.as_bytes()), &opts) {
                Ok(resp) if resp.status == 200 => match serde_json::from_slice(&resp.body) {
                    Ok(v) => return Ok(v),
                    Err(e) => last_error[i] = Some(format!("{target}: bad JSON ({e})")),
                },
                Ok(resp) => {
                    last_error[i] = Some(format!(
                        "{target}: HTTP {} {}",
                        resp.status,
                        String::from_utf8_lossy(&resp.body).trim()
                    ))
                }
                Err(e) => last_error[i] = Some(format!("{target}: {e}")),
            }
            i = (i + 1) % count;
            if i == first % count {
                // A whole round failed: do not spin.
                thread::sleep(Duration::from_millis(50).min(left));
            }
        }
    }

    pub(super) fn put(&self, key: &str, value: &[u8], first: usize) -> Result<(), String> {
        let body = json!({"key": B64.encode(key), "value": B64.encode(value)});
        let answer = self.call("/v3/kv/put", &body, first)?;
        if answer.get("header").is_some() {
            Ok(())
        } else {
            Err(format!("unexpected put answer {answer}"))
        }
    }

    pub(super) fn get(&self, key: &str, first: usize) -> Result<Option<Vec<u8>>, String> {
        let body = json!({"key": B64.encode(key)});
        let answer = self.call("/v3/kv/range", &body, first)?;
        if answer.get("header").is_none() {
            return Err(format!("unexpected range answer {answer}"));
        }
        let Some(kv) = answer["kvs"].as_array().and_then(|kvs| kvs.first()) else {
            return Ok(None);
        };
        // An empty value is left out of the JSON.
        let value = kv["value"].as_str().unwrap_or("");
        B64.decode(value)
            .map(Some)
            .map_err(|e| format!("range answer value is not base64 ({e}): {answer}"))
    }
}

/// What a [`ClientLoad`] saw. Every put and every get is one request.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests served correctly.
    pub ok: usize,
    /// Requests no member served within 2 s, and gets that returned a wrong value.
    pub failed: usize,
    pub failures: Vec<String>,
    /// The longest time one request took (failover included).
    pub slowest: Duration,
}

/// A background put-then-get loop; see [`EtcdCluster::spawn_client`].
pub struct ClientLoad {
    pub(super) stop: Arc<AtomicBool>,
    pub(super) handle: Option<JoinHandle<LoadReport>>,
}

impl ClientLoad {
    /// Stops the loop (after the round in flight, at most ~4 s) and reports.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .expect("load thread")
            .join()
            .expect("load thread panicked")
    }
}

impl Drop for ClientLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub(super) fn run_load(client: &Client, stop: &AtomicBool) -> LoadReport {
    let mut report = LoadReport::default();
    let prefix = format!(
        "/certs-load/{}-{}/",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let count = client.endpoints.len();
    let mut seq = 0usize;
    let fail = |report: &mut LoadReport, what: String| {
        report.failed += 1;
        report.failures.push(what);
    };
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let key = format!("{prefix}{seq:06}");
        let value = format!("value {seq} of {prefix}");
        let t = Instant::now();
        let put = client.put(&key, value.as_bytes(), seq % count);
        report.slowest = report.slowest.max(t.elapsed());
        if let Err(e) = put {
            fail(&mut report, format!("put {key}: {e}"));
            continue;
        }
        report.ok += 1;
        // Read it back from the next member: a linearizable read must see the put.
        let t = Instant::now();
        let got = client.get(&key, seq % count + 1);
        report.slowest = report.slowest.max(t.elapsed());
        match got {
            Ok(Some(v)) if v == value.as_bytes() => report.ok += 1,
            Ok(Some(v)) => fail(
                &mut report,
                format!(
                    "get {key}: wrong value {:?}, expected {value:?}",
                    String::from_utf8_lossy(&v)
                ),
            ),
            Ok(None) => fail(&mut report, format!("get {key}: not found after its put")),
            Err(e) => fail(&mut report, format!("get {key}: {e}")),
        }
        thread::sleep(LOAD_INTERVAL);
    }
    report
}
