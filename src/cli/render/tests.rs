//! Tests of the renderers on fixture data with a fixed `now`: unit tests of what a line says,
//! and `insta` snapshots (in `snapshots/`, reviewed and committed) of whole tables and documents:
//! the inspect table and JSON shape, the preflight table, the reissue JSON result. Paths are
//! relative to the package root (where cargo runs unit tests), so the snapshots do not depend on
//! the checkout's location.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::args::{Output, PlanOutput};
use crate::cli::config::InspectConfig;
use crate::pki::inventory::Inventory;
use crate::preflight::{Check, Status};

const ROOT: &str = "fixtures/kubeadm";
/// 2034-06-01T00:00:00Z: the kubeadm fixture's leaves end 2034-12-31, its CAs 2035-01-01.
const NOW: i64 = 2_032_732_800;

fn config(paths: &[&str], output: Output) -> InspectConfig {
    InspectConfig {
        paths: paths.iter().map(PathBuf::from).collect(),
        endpoints: vec![],
        root: PathBuf::from(ROOT),
        output,
        now: NOW,
        warn_within: 30 * 86400,
        monitor: false,
        ca: None,
        insecure: false,
        timeout: Duration::from_secs(5),
        textfile: None,
    }
}

fn scan(c: &InspectConfig) -> Inventory {
    crate::pki::scan::scan(&crate::pki::scan::ScanRequest {
        paths: &c.paths,
        root: &c.root,
        now: c.now,
        warn_within: c.warn_within,
    })
    .expect("the kubeadm fixture scans")
}

fn inspect(c: &InspectConfig, width: Option<usize>) -> String {
    let inv = scan(c);
    let mut out = Vec::new();
    super::inspect(&mut out, &inv, &[], c, width).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_fixed_now_is_2034_06_01() {
    assert_eq!(crate::duration::rfc3339(NOW), "2034-06-01T00:00:00Z");
}

#[test]
fn inspect_table_of_the_kubeadm_fixture() {
    let text = inspect(&config(&[], Output::Table), Some(160));
    assert!(text.lines().all(|l| l.chars().count() <= 160), "{text}");
    insta::assert_snapshot!("inspect_table", text);
}

#[test]
fn inspect_table_fits_a_narrow_terminal_by_leaving_columns_out() {
    let text = inspect(&config(&[], Output::Table), Some(80));
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    assert!(text.starts_with("CERTIFICATE"), "{text}");
    assert!(!text.contains("SANS"), "the SANs go first: {text}");
}

#[test]
fn inspect_json_shape() {
    let c = config(
        &[
            "fixtures/kubeadm/etc/kubernetes/pki/ca.crt",
            "fixtures/kubeadm/etc/kubernetes/pki/ca.key",
            "fixtures/kubeadm/etc/kubernetes/pki/apiserver.crt",
            "fixtures/kubeadm/etc/kubernetes/pki/apiserver.key",
            "fixtures/kubeadm/etc/kubernetes/admin.conf",
        ],
        Output::Json,
    );
    let text = inspect(&c, None);
    let v: serde_json::Value = serde_json::from_str(&text).expect("one JSON document");
    assert_eq!(v["schema"], "certs.inspect/v1");
    assert_eq!(v["now"], "2034-06-01T00:00:00Z");
    insta::assert_snapshot!("inspect_json", text);
}

fn preflight_report() -> crate::preflight::Report {
    crate::preflight::run(&crate::preflight::Config {
        paths: vec![],
        root: PathBuf::from(ROOT),
        home: None,
        now: NOW,
        window: 30 * 86400,
        timeout: Duration::from_secs(1),
        vip: Some(("10.21.22.100".into(), 6443)),
        offline: true,
        retire: vec![],
        keep: vec![],
        endpoints: vec![],
        etcd: vec![],
        etcd_ca: None,
        etcd_client: None,
        state_dir: PathBuf::from("fixtures/kubeadm/var/lib/certs"),
    })
    .expect("preflight runs on the kubeadm fixture")
}

fn preflight_text(checks: &[Check], width: Option<usize>) -> String {
    let mut out = Vec::new();
    super::preflight(&mut out, checks, PlanOutput::Text, width).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn preflight_table_of_a_vip_change_on_the_kubeadm_fixture() {
    let mut report = preflight_report();
    // What depends on the machine, not on the fixture: the modes the checkout gave the key
    // files (the umask), and the free space where the backup would go.
    let machine = ["key-permissions", "backup-dir"];
    assert!(report.checks.iter().any(|c| c.id == "backup-dir"));
    report.checks.retain(|c| !machine.contains(&c.id));
    let text = preflight_text(&report.checks, Some(120));
    assert!(text.lines().all(|l| l.chars().count() <= 120), "{text}");
    insta::assert_snapshot!("preflight_table", text);
}

#[test]
fn preflight_lines_continue_under_themselves_and_end_with_the_counts() {
    let checks = vec![
        Check::pass("ca-valid", "the cluster CA is valid until 2035"),
        Check::fail(
            "vip-san",
            "fixtures/kubeadm/etc/kubernetes/pki/apiserver.crt does not cover 10.21.22.100",
            Some("certs reissue fixtures/kubeadm/etc/kubernetes/pki/apiserver.crt --add-san 10.21.22.100".into()),
        ),
        Check::warn("config-unreadable", "x", None),
    ];
    // Wide enough: messages at column 33.
    let text = preflight_text(&checks, Some(100));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("{:<5} {:<26} {}", "pass", "ca-valid", checks[0].message)
    );
    assert!(lines[1].starts_with("FAIL  vip-san"), "{text}");
    assert!(lines.iter().all(|l| l.chars().count() <= 100), "{text}");
    let fix = lines
        .iter()
        .position(|l| l.trim_start().starts_with("fix: "))
        .unwrap();
    assert_eq!(lines[fix].find("fix: "), Some(33), "{text}");
    assert_eq!(*lines.last().unwrap(), "3 checks: 1 failed, 1 warnings");
    // Narrow: continuation lines at column 6.
    let narrow = preflight_text(&checks, Some(60));
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
    assert!(
        narrow.lines().any(|l| l.starts_with("      fix: ")),
        "{narrow}"
    );
    // No width: one line per message and per fix.
    assert_eq!(preflight_text(&checks, None).lines().count(), 5);
}

#[test]
fn preflight_json_is_one_document_with_every_check() {
    let checks = vec![Check::fail("vip-san", "not covered", None)];
    let mut out = Vec::new();
    super::preflight(&mut out, &checks, PlanOutput::Json, Some(20)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["schema"], "certs.preflight/v1");
    assert_eq!(v["checks"][0]["id"], "vip-san");
    assert_eq!(v["checks"][0]["status"], "fail");
    assert!(v["checks"][0].get("fix").is_none(), "no fix: no field");
    assert_eq!(checks[0].status, Status::Fail);
}

/// `reissue fixtures/kubeadm/.../apiserver.crt --add-san 10.21.22.100` as of [`NOW`], dry run.
fn reissued() -> crate::issue::reissue::Reissue {
    let targets = [PathBuf::from(
        "fixtures/kubeadm/etc/kubernetes/pki/apiserver.crt",
    )];
    let edit = crate::spec::SanEdit {
        add: vec![crate::spec::San::parse("10.21.22.100").unwrap()],
        drop: vec![],
    };
    crate::issue::reissue::reissue(&crate::issue::reissue::ReissueRequest {
        targets: &targets,
        edit: &edit,
        ca: None,
        new_key: false,
        key_algo: None,
        validity: None,
        now: NOW,
    })
    .expect("the apiserver certificate reissues")
}

#[test]
fn reissue_json_result() {
    let r = reissued();
    let mut report = crate::issue::report::build(
        "certs.reissue/v1",
        NOW,
        &r.outcomes,
        None,
        r.manifest.as_ref(),
        None,
        true,
    );
    // The new serial is random; everything else follows from the fixture and `now`.
    for f in &mut report.files {
        assert!(f.new_serial.is_some(), "reissued");
        f.new_serial = Some("[random serial]".into());
    }
    let mut out = Vec::new();
    crate::cli::reissue::print_json(&mut out, &report).unwrap();
    let text = String::from_utf8(out).unwrap();
    // Targets are absolute: the checkout's location is not part of the shape.
    let cwd = std::env::current_dir().unwrap().display().to_string();
    let text = text.replace(&cwd, "[package root]");
    insta::assert_snapshot!("reissue_json", text);
}

#[test]
fn reissue_lines_say_what_changed_and_where_the_bundle_would_go() {
    let r = reissued();
    let mut out = Vec::new();
    for o in &r.outcomes {
        crate::cli::reissue::outcome_lines(&mut out, o).unwrap();
    }
    crate::cli::reissue::bundle_lines(&mut out, r.manifest.as_ref(), Path::new("b"), true).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cwd = std::env::current_dir().unwrap().display().to_string();
    let pki = format!("{cwd}/fixtures/kubeadm/etc/kubernetes/pki");
    assert_eq!(
        lines[0],
        format!("{pki}/apiserver.crt: CN=kube-apiserver signed by {pki}/ca.crt"),
        "{text}"
    );
    assert_eq!(lines[1], "  + IP:10.21.22.100", "{text}");
    assert!(
        lines[2].starts_with("  7 SANs kept; serial 5F23E761F10B7574719AE7380533F832 -> ")
            && lines[2].ends_with("; key kept; valid until 2035-01-01T00:00:00Z"),
        "{text}"
    );
    assert!(
        text.contains("dry run: would write 1 files and bundle.json to b\n"),
        "{text}"
    );
    let mut none = Vec::new();
    crate::cli::reissue::bundle_lines(&mut none, None, Path::new("b"), false).unwrap();
    assert_eq!(none, b"nothing to reissue: no bundle written\n");
}
