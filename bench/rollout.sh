#!/usr/bin/env bash
# Measures `certs rollout apply` on a real three-member etcd cluster (TLS on 127.0.0.11-13)
# against the floor: the sum of each member's bare restart-to-healthy time through the same
# health gate. Prints a markdown table for BENCHMARKS.md. A measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test cli rollout_measurement -- --ignored --nocapture 2>&1 | grep '^|'
