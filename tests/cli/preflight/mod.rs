//! `certs preflight` on the seed scenarios (exact sets of failed and warned checks), against a
//! real etcd cluster, and through a real nginx stream proxy on a loopback "VIP".

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::util::{certs, fixture, s, tls_server, NOW};

mod config_files;
mod live;
mod retirement;

fn preflight(args: &[String]) -> (i32, Value) {
    let mut all = vec!["preflight".to_string(), "-o".into(), "json".into()];
    all.extend(args.iter().cloned());
    let run = certs(&all);
    assert!(
        run.code == 0 || run.code == 1,
        "exit {}: {}",
        run.code,
        run.stderr
    );
    (run.code, run.json())
}

/// (failed ids, warned ids)
fn ids(report: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let pick = |status: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == status)
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect()
    };
    (pick("fail"), pick("warn"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn messages(report: &Value, id: &str) -> String {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| format!("{} | {}", c["message"], c["fix"]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The fix texts of the checks with `id`.
fn fixes(report: &Value, id: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .filter_map(|c| c["fix"].as_str().map(str::to_string))
        .collect()
}

fn statuses(report: &Value, id: &str) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .collect()
}
