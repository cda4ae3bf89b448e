//! `certs inspect -o prometheus` and `--textfile`: x509-certificate-exporter's metrics for a
//! node, in the text format node_exporter's textfile collector reads, checked with a real
//! parser (the `prometheus-parse` crate; `promtool check metrics` too when it is installed) and
//! against `-o json` and openssl for the values.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};

use prometheus_parse::{Sample, Scrape, Value};

use crate::util::{certs, fixture, openssl, NOW};

/// The label names x509-certificate-exporter puts on file and kubeconfig certificates.
const EXPORTER_LABELS: &[&str] = &[
    "filename",
    "filepath",
    "serial_number",
    "embedded_kind",
    "embedded_key",
    "issuer_C",
    "issuer_ST",
    "issuer_L",
    "issuer_O",
    "issuer_OU",
    "issuer_CN",
    "subject_C",
    "subject_ST",
    "subject_L",
    "subject_O",
    "subject_OU",
    "subject_CN",
];

fn metrics(args: &[&str]) -> String {
    let mut all = vec!["inspect", "-o", "prometheus"];
    all.extend_from_slice(args);
    let run = certs(&all);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    run.stdout
}

/// Parses the text, and proves every sample line was understood (the parser skips what it
/// cannot read).
fn parse(text: &str) -> Scrape {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("text format");
    let sample_lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(scrape.samples.len(), sample_lines, "{text}");
    scrape
}

fn gauge(s: &Sample) -> f64 {
    match s.value {
        Value::Gauge(v) => v,
        ref other => panic!("{} is not a gauge: {other:?}", s.metric),
    }
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let found: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:?}");
    found[0]
}

fn decimal_serial(hex: &str) -> String {
    u128::from_str_radix(hex, 16).unwrap().to_string()
}

/// `CN=x` of a subject as `-o json` prints it (`O=a, CN=x`).
fn cn(subject: &str) -> &str {
    subject
        .split(", ")
        .find_map(|a| a.strip_prefix("CN="))
        .unwrap()
}

#[test]
fn kubeadm_node_metrics_parse_and_match_the_scan() {
    let node = fixture("kubeadm");
    let root = node.path().to_str().unwrap();
    let text = metrics(&["--root", root, "--now", NOW]);
    let scrape = parse(&text);

    let help = [
        (
            "x509_cert_expired",
            "Indicates if the certificate is expired",
        ),
        (
            "x509_cert_not_after",
            "Indicates the certificate's not after timestamp",
        ),
        (
            "x509_cert_not_before",
            "Indicates the certificate's not before timestamp",
        ),
        (
            "x509_read_errors",
            "Indicates the number of read failure(s)",
        ),
    ];
    let docs: HashMap<&str, &str> = scrape
        .docs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(docs, HashMap::from(help));
    for name in help.map(|(n, _)| n) {
        assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{name}");
    }
    for s in &scrape.samples {
        gauge(s);
        for label in s.labels.keys() {
            assert!(
                EXPORTER_LABELS.contains(&label.as_str()),
                "{label} on {s:?}"
            );
        }
    }
    // No client-side timestamps: node_exporter rejects a textfile that has them.
    assert!(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .all(|l| l.split(' ').count() == 2));
    assert_eq!(gauge(find(&scrape, "x509_read_errors", &[])), 0.0);

    // Every certificate file the scan read, under its path on the node.
    let report = certs(["inspect", "--root", root, "-o", "json", "--now", NOW]).json();
    let files: Vec<&serde_json::Value> = report["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["embedded"].is_null())
        .collect();
    assert_eq!(files.len(), 13);
    for c in &files {
        let path = c["path"].as_str().unwrap();
        let on_node = path.strip_prefix(root).unwrap();
        let serial = decimal_serial(c["serial"].as_str().unwrap());
        let labels = [("filepath", on_node), ("serial_number", serial.as_str())];
        let not_after = find(&scrape, "x509_cert_not_after", &labels);
        let epoch = |field: &str| {
            time::OffsetDateTime::parse(
                c[field].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
            .unix_timestamp() as f64
        };
        assert_eq!(gauge(not_after), epoch("not_after"));
        assert_eq!(
            gauge(find(&scrape, "x509_cert_not_before", &labels)),
            epoch("not_before")
        );
        assert_eq!(gauge(find(&scrape, "x509_cert_expired", &labels)), 0.0);
        let l = &not_after.labels;
        assert_eq!(
            l.get("filename"),
            Path::new(on_node).file_name().unwrap().to_str()
        );
        assert_eq!(
            l.get("subject_CN"),
            Some(cn(c["subject"].as_str().unwrap()))
        );
        assert_eq!(l.get("issuer_CN"), Some(cn(c["issuer"].as_str().unwrap())));
        assert_eq!(l.get("embedded_kind"), None);
    }

    // The serial as openssl reads it, in decimal as the exporter prints it.
    let apiserver = node.path().join("etc/kubernetes/pki/apiserver.crt");
    let hex = openssl([
        "x509",
        "-in",
        apiserver.to_str().unwrap(),
        "-noout",
        "-serial",
    ]);
    let serial = decimal_serial(hex.trim().strip_prefix("serial=").unwrap());
    let s = find(
        &scrape,
        "x509_cert_not_after",
        &[("serial_number", &serial), ("filename", "apiserver.crt")],
    );
    assert_eq!(s.labels.get("subject_CN"), Some("kube-apiserver"));
    assert_eq!(s.labels.get("subject_O"), None);

    // Kubeconfigs: the cluster CA and the user's certificate, embedded or referenced.
    let admin = find(
        &scrape,
        "x509_cert_not_after",
        &[
            ("filepath", "/etc/kubernetes/admin.conf"),
            ("embedded_kind", "user"),
            ("embedded_key", "kubernetes-admin"),
        ],
    );
    assert_eq!(admin.labels.get("filename"), Some("admin.conf"));
    assert_eq!(
        admin.labels.get("subject_O"),
        Some("kubeadm:cluster-admins")
    );
    let ca_serial = find(
        &scrape,
        "x509_cert_not_after",
        &[("filepath", "/etc/kubernetes/pki/ca.crt")],
    )
    .labels
    .get("serial_number")
    .unwrap();
    let cluster = find(
        &scrape,
        "x509_cert_not_after",
        &[
            ("filepath", "/etc/kubernetes/admin.conf"),
            ("embedded_kind", "cluster"),
            ("embedded_key", "kubernetes"),
        ],
    );
    assert_eq!(cluster.labels.get("serial_number"), Some(ca_serial));
    // kubelet.conf names its client certificate by path.
    let kubelet = find(
        &scrape,
        "x509_cert_expired",
        &[
            ("filepath", "/etc/kubernetes/kubelet.conf"),
            ("embedded_kind", "user"),
            ("embedded_key", "system:node:master1"),
        ],
    );
    assert_eq!(kubelet.labels.get("subject_O"), Some("system:nodes"));
    // 13 certificates in files, 5 kubeconfigs with a cluster CA and a user each.
    let per_metric = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "x509_cert_not_after")
        .count();
    assert_eq!(per_metric, 13 + 5 * 2);
}

/// Expired certificates are 1; unreadable and unparseable files are counted as read errors.
#[test]
fn expired_certificates_and_read_errors() {
    let node = fixture("broken");
    let dir = node.path().join("etc/kubernetes/pki");
    let dir = dir.to_str().unwrap();
    let scrape = parse(&metrics(&[dir, "--now", NOW]));
    let expired = |file: &str| gauge(find(&scrape, "x509_cert_expired", &[("filename", file)]));
    assert_eq!(expired("expired.crt"), 1.0);
    assert_eq!(expired("not-yet-valid.crt"), 0.0);
    assert_eq!(expired("apiserver.crt"), 0.0);
    let report = certs(["inspect", dir, "-o", "json", "--now", NOW]).json();
    let failed: BTreeSet<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            [
                "unreadable",
                "unparseable",
                "too-large",
                "symlink-loop",
                "missing-reference",
            ]
            .contains(&f["code"].as_str().unwrap())
        })
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(failed.len() >= 4, "{failed:?}");
    assert_eq!(
        gauge(find(&scrape, "x509_read_errors", &[])),
        failed.len() as f64
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn textfile_is_replaced_atomically_for_a_cron_job() {
    let node = fixture("kubeadm");
    let root = node.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let prom = out.path().join("certs.prom");
    let prom_arg = prom.to_str().unwrap();
    let run = certs([
        "inspect",
        "--root",
        root,
        "-o",
        "prometheus",
        "--now",
        NOW,
        "--textfile",
        prom_arg,
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "", "the metrics go to the file only");
    let written = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(written, metrics(&["--root", root, "--now", NOW]));
    assert_eq!(mode(&prom), 0o644, "node_exporter must be able to read it");

    // The next run replaces it whole (its mode kept), and leaves no temp file beside it.
    std::fs::set_permissions(&prom, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let later = "2035-06-01T00:00:00Z";
    let run = certs([
        "inspect",
        "--root",
        root,
        "-o",
        "prometheus",
        "--now",
        later,
        "--textfile",
        prom_arg,
    ]);
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let written = std::fs::read_to_string(&prom).unwrap();
    let scrape = parse(&written);
    assert!(scrape
        .samples
        .iter()
        .filter(|s| s.metric == "x509_cert_expired")
        .all(|s| gauge(s) == 1.0));
    assert_eq!(mode(&prom), 0o640);
    let names: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["certs.prom"]);
}

#[test]
fn textfile_needs_prometheus_output_and_a_directory() {
    let node = fixture("kubeadm");
    let root = node.path().to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let prom = out.path().join("certs.prom");
    let run = certs([
        "inspect",
        "--root",
        root,
        "--textfile",
        prom.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("expected -o prometheus"),
        "{}",
        run.stderr
    );
    assert!(!prom.exists());

    let nowhere = out.path().join("missing/certs.prom");
    let run = certs([
        "inspect",
        "--root",
        root,
        "-o",
        "prometheus",
        "--textfile",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("missing"), "{}", run.stderr);
}

/// `promtool check metrics`, Prometheus's own parser and linter, on the fixture and on a
/// certificate whose names need escaping. Debian packages it as `prometheus` (tests/debian.sh
/// installs it); without it the test fails saying so.
#[test]
fn promtool_accepts_the_metrics() {
    let promtool = Command::new("promtool").arg("--version").output();
    assert!(
        promtool.is_ok_and(|o| o.status.success()),
        "promtool not found: apt-get install prometheus (tests/debian.sh does)"
    );
    let check = |text: &str| {
        let mut child = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let node = fixture("kubeadm");
    check(&metrics(&[
        "--root",
        node.path().to_str().unwrap(),
        "--now",
        NOW,
    ]));

    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = (dir.path().join("w.crt"), dir.path().join("w.key"));
    openssl([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-days",
        "30",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
        "-subj",
        r#"/C=FR/O=a\,b "q"/OU=back\\slash/CN=we"ird}{=x"#,
    ]);
    let text = metrics(&[dir.path().to_str().unwrap()]);
    assert!(
        text.contains(r#"subject_CN="we\"ird}{=x""#)
            && text.contains(r#"subject_OU="back\\slash""#),
        "{text}"
    );
    check(&text);
}
