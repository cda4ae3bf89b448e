//! Fuzzing that stays (issue 12): the parsers that read what a node holds, and the edits built
//! on them, fed mutated inputs on stable Rust (see `engine.rs` for how, `targets/` for what).
//!
//! - `cargo test --test fuzz`: a short, deterministic run of every target (fixed seed, fixed
//!   number of inputs), and every saved reproducer under `tests/fuzz/crashes/TARGET/` replayed.
//! - The long run (RELIABILITY.md), one target or all, saving failing inputs under `fuzz-out/`:
//!   `FUZZ_TARGET=san FUZZ_SECONDS=600 cargo test --release --test fuzz -- --ignored --nocapture`

#![allow(clippy::disallowed_methods)]

mod engine;
mod targets;

use std::path::PathBuf;
use std::time::Duration;

use engine::{Config, Kind, Target};

/// The watchdog's limit: one input taking longer is a hang (issue 12, "Done when").
const HANG: Duration = Duration::from_secs(5);
/// Inputs up to 256 KiB: enough for 100,000-deep nesting.
const MAX_LEN: usize = 256 << 10;
/// The short run keeps inputs small so it stays a few seconds per target.
const SHORT_MAX_LEN: usize = 16 << 10;

/// Reproducers the short run does not replay: a hang keeps a core busy long after the watchdog
/// fails it, so it would slow the whole suite. The long run and `fuzz_replay` still run them.
const NOT_REPLAYED: &[(&str, &str)] = &[];

/// Runs `target` for `iterations` inputs (after its seeds and saved reproducers) with a fixed
/// seed and fails on any failure not excused by a `known` entry.
fn short(target: &Target, iterations: u64) {
    let saved: Vec<Vec<u8>> = engine::reproducers(target.name)
        .into_iter()
        .filter(|(p, _)| !NOT_REPLAYED.iter().any(|(file, _)| p.ends_with(file)))
        .map(|(_, b)| b)
        .collect();
    let st = engine::run(
        target,
        saved,
        &Config {
            iterations: Some(iterations),
            duration: None,
            seed: 0x5eed_0000 + target.name.len() as u64,
            // Set FUZZ_OUT to keep what the short run found, as the long run does.
            out: std::env::var_os("FUZZ_OUT").map(PathBuf::from),
            timeout: HANG,
            max_len: SHORT_MAX_LEN,
        },
    );
    let report = engine::summary(target, &st);
    println!("{report}");
    let failing: Vec<_> = st.failures.iter().filter(|f| f.known.is_none()).collect();
    assert!(
        failing.is_empty(),
        "fuzz target {} failed:\n{report}",
        target.name
    );
    assert!(
        st.hangs == 0
            || st
                .failures
                .iter()
                .any(|f| f.kind == Kind::Hang && f.known.is_some())
    );
}

#[test]
fn fuzz_pem_scan_short() {
    short(&targets::PEM_SCAN, 800);
}

#[test]
fn fuzz_key_decode_short() {
    short(&targets::KEY_DECODE, 2000);
}

#[test]
fn fuzz_kubeconfig_parse_short() {
    short(&targets::KUBECONFIG_PARSE, 800);
}

#[test]
fn fuzz_kubeconfig_edit_short() {
    short(&targets::KUBECONFIG_EDIT, 1200);
}

#[test]
fn fuzz_san_short() {
    short(&targets::SAN, 1000);
}

#[test]
fn fuzz_unit_config_short() {
    short(&targets::UNIT_CONFIG, 1500);
}

#[test]
fn fuzz_proxy_config_short() {
    short(&targets::PROXY_CONFIG, 1000);
}

#[test]
fn fuzz_bundle_json_short() {
    short(&targets::BUNDLE_JSON, 500);
}

/// The long run. `FUZZ_TARGET` (a name, or unset for every target one after the other),
/// `FUZZ_SECONDS` per target (600), `FUZZ_SEED` (from the clock), `FUZZ_OUT` (`fuzz-out`).
/// Prints one line per target (inputs tried, panics, hangs, rejects) and every distinct
/// failure with the file its input was saved to; fails when any target failed.
#[test]
#[ignore = "the long run: FUZZ_SECONDS=600 cargo test --release --test fuzz -- --ignored --nocapture"]
fn fuzz_long() {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let chosen: Vec<&Target> = match env("FUZZ_TARGET") {
        Some(names) => names
            .split(',')
            .map(|n| {
                targets::by_name(n).unwrap_or_else(|| {
                    panic!(
                        "FUZZ_TARGET: expected one of {}, found `{n}`",
                        targets::ALL
                            .iter()
                            .map(|t| t.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            })
            .collect(),
        None => targets::ALL.iter().collect(),
    };
    let seconds: u64 =
        env("FUZZ_SECONDS").map_or(600, |s| s.parse().expect("FUZZ_SECONDS: seconds"));
    let seed: u64 = env("FUZZ_SEED").map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        },
        |s| s.parse().expect("FUZZ_SEED: a number"),
    );
    let out = PathBuf::from(env("FUZZ_OUT").unwrap_or_else(|| "fuzz-out".into()));
    let mut failed = false;
    for t in chosen {
        println!(
            "fuzz {} ({}): {} s, seed {seed}, failures saved under {}",
            t.name,
            t.about,
            seconds,
            out.join(t.name).display()
        );
        let st = engine::run(
            t,
            Vec::new(),
            &Config {
                iterations: None,
                duration: Some(Duration::from_secs(seconds)),
                seed,
                out: Some(out.clone()),
                timeout: HANG,
                max_len: MAX_LEN,
            },
        );
        println!("{}", engine::summary(t, &st));
        failed |= st.panics + st.hangs + st.rejects > 0 || st.aborted.is_some();
    }
    assert!(!failed, "a fuzz target failed (above)");
}

/// Runs saved inputs once and prints what the target says of each:
/// `FUZZ_TARGET=san FUZZ_REPLAY=fuzz-out/san/reject-… cargo test --test fuzz fuzz_replay -- --ignored --nocapture`
/// (`FUZZ_REPLAY` may list several files, comma-separated).
#[test]
#[ignore = "replays FUZZ_REPLAY files through FUZZ_TARGET"]
fn fuzz_replay() {
    let target = std::env::var("FUZZ_TARGET").expect("FUZZ_TARGET: a target name");
    let target = targets::by_name(&target).expect("FUZZ_TARGET: a known target");
    let files = std::env::var("FUZZ_REPLAY").expect("FUZZ_REPLAY: input files");
    for f in files.split(',') {
        let input = std::fs::read(f).expect("read the input");
        let t0 = std::time::Instant::now();
        let verdict = std::panic::catch_unwind(|| (target.run)(&input));
        println!(
            "{f}: {:?} in {:.3} s",
            verdict.as_ref().map_err(|_| "panic"),
            t0.elapsed().as_secs_f64()
        );
    }
}
