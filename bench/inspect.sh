#!/usr/bin/env bash
# Benchmark: `certs inspect -o json` on 10,000 certificate files (a fleet of 1,000 kubeadm
# backups, 10 certificates + 10 keys each), next to two baselines measured in the same run:
#
#   read-only  the raw cost of reading the same 20,000 files: find | xargs cat > /dev/null
#   openssl    one `openssl x509 -noout -text -in F` process per certificate file
#
# Usage: bench/inspect.sh            (from any directory)
#
# Environment:
#   BACKUPS=1000        backups in the corpus (10 certificate files each)
#   RUNS=3              timed runs per measurement; the best is kept (cache warm)
#   OPENSSL_SAMPLE=1000 certificate files timed for the openssl loop, scaled linearly to all of
#                       them (every k-th file in path order); 0 times every file
#
# The corpus lives in target/bench-corpus and is reused when it holds the right number of
# files. This is a measurement, not a test: it exits 0 whether or not a target is met, and
# prints the verdict. Figures are recorded in BENCHMARKS.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

BACKUPS=${BACKUPS:-1000}
RUNS=${RUNS:-3}
OPENSSL_SAMPLE=${OPENSSL_SAMPLE:-1000}
NOW=2030-01-01T00:00:00Z
target_dir=${CARGO_TARGET_DIR:-$repo/target}
corpus=$target_dir/bench-corpus
certs=$target_dir/release/certs
expected=$((BACKUPS * 10))

say() { printf '==> %s\n' "$*" >&2; }
now() { date +%s.%N; }
# Seconds elapsed since $1.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.6f", b - a }'; }
# Best (lowest) wall time in seconds of RUNS runs of "$@".
best_of() {
    local best="" t start i
    for ((i = 1; i <= RUNS; i++)); do
        start=$(now)
        "$@"
        t=$(since "$start")
        say "  run $i: ${t}s"
        best=$(awk -v a="$best" -v b="$t" 'BEGIN { print (a == "" || b < a) ? b : a }')
    done
    echo "$best"
}

# --- prerequisites ---------------------------------------------------------------------------
for tool in cargo openssl awk python3 find xargs; do
    command -v "$tool" >/dev/null || { echo "bench/inspect.sh: $tool is required" >&2; exit 1; }
done
gnu_time=/usr/bin/time
if ! "$gnu_time" -f %M true >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing GNU time (apt-get install time) to measure peak memory"
        apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
    fi
    if ! "$gnu_time" -f %M true >/dev/null 2>&1; then
        say "GNU time is missing: peak memory will not be measured (install it: sudo apt-get install time)"
        gnu_time=""
    fi
fi

# --- build and corpus ------------------------------------------------------------------------
say "cargo build --release"
cargo build --release --quiet
cargo build --release --quiet --example bench-corpus

count() { find "$corpus" -type f -name "$1" 2>/dev/null | wc -l; }
if [[ -d $corpus && $(count '*.crt') == "$expected" && $(count '*.key') == "$expected" ]]; then
    say "reusing $corpus ($expected certificate files, $expected key files)"
else
    say "generating $corpus ($BACKUPS backups)"
    rm -rf "$corpus"
    "$target_dir/release/examples/bench-corpus" "$corpus" --backups "$BACKUPS"
fi
files=$(find "$corpus" -type f | wc -l)
cert_files=$(count '*.crt')

# --- warm-up and sanity check ----------------------------------------------------------------
say "warm-up: reading the tree once, checking certs' output"
find "$corpus" -type f -print0 | xargs -0 cat >/dev/null
json=$(mktemp)
trap 'rm -f "$json" "${sample:-}"' EXIT
"$certs" inspect "$corpus" -o json --now "$NOW" >"$json"
python3 - "$json" "$cert_files" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
certs, want = doc["certificates"], int(sys.argv[2])
unlinked = sum(1 for c in certs if not c["signed_by"] or not c["key_path"])
if len(certs) != want or unlinked or doc["findings"]:
    sys.exit(f"unexpected output: {len(certs)} certificates (want {want}), "
             f"{unlinked} without issuer or key, {len(doc['findings'])} findings")
print(f"==> ok: {len(certs)} certificates, {len(doc['keys'])} keys, all linked to issuer and key",
      file=sys.stderr)
EOF

# --- measurements ----------------------------------------------------------------------------
read_all() { find "$corpus" -type f -print0 | xargs -0 cat >/dev/null; }
say "read-only: find $corpus -type f -print0 | xargs -0 cat > /dev/null   ($files files)"
t_read=$(best_of read_all)

run_certs() { "$certs" inspect "$corpus" -o json --now "$NOW" >/dev/null; }
say "certs: $certs inspect $corpus -o json --now $NOW > /dev/null"
t_certs=$(best_of run_certs)
rss_kib=""
if [[ -n $gnu_time ]]; then
    rss_kib=$("$gnu_time" -f %M "$certs" inspect "$corpus" -o json --now "$NOW" 2>&1 >/dev/null | tail -1)
    say "  peak RSS (GNU time %M, one more run): ${rss_kib} KiB"
fi

sample=$(mktemp)
if [[ $OPENSSL_SAMPLE -gt 0 && $OPENSSL_SAMPLE -lt $cert_files ]]; then
    step=$((cert_files / OPENSSL_SAMPLE))
    find "$corpus" -type f -name '*.crt' | LC_ALL=C sort \
        | awk -v k="$step" -v n="$OPENSSL_SAMPLE" '(NR - 1) % k == 0 && c < n { print; c++ }' >"$sample"
else
    find "$corpus" -type f -name '*.crt' | LC_ALL=C sort >"$sample"
fi
sampled=$(wc -l <"$sample")
openssl_loop() { tr '\n' '\0' <"$sample" | xargs -0 -n1 openssl x509 -noout -text -in >/dev/null; }
say "openssl: openssl x509 -noout -text -in F, one process per file, $sampled of $cert_files files"
t_sample=$(best_of openssl_loop)
t_openssl=$(awk -v t="$t_sample" -v s="$sampled" -v n="$cert_files" 'BEGIN { printf "%.6f", t * n / s }')

# --- report ----------------------------------------------------------------------------------
echo
echo "certs inspect benchmark: $cert_files certificate files ($files files in all), $(nproc) CPUs,"
echo "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), best of $RUNS runs, cache warm"
echo
awk -v n="$cert_files" -v files="$files" -v sampled="$sampled" \
    -v tr="$t_read" -v tc="$t_certs" -v ts="$t_sample" -v to="$t_openssl" -v rss="$rss_kib" '
BEGIN {
    fmt = "%-36s %8s %12s %14s\n"
    printf fmt, "measurement", "files", "seconds", "certs/second"
    printf fmt, "read-only (find | xargs cat)", files, sprintf("%.3f", tr), sprintf("%.0f", n / tr)
    printf fmt, "certs inspect -o json", files, sprintf("%.3f", tc), sprintf("%.0f", n / tc)
    if (sampled < n)
        printf fmt, "openssl x509 -text, per file (*)", n, sprintf("%.3f", to), sprintf("%.0f", n / to)
    else
        printf fmt, "openssl x509 -text, per file", n, sprintf("%.3f", to), sprintf("%.0f", n / to)
    if (sampled < n)
        printf "(*) %d of the %d certificate files timed (%.3fs), scaled linearly\n", sampled, n, ts
    print ""
    vs_openssl = to / tc
    vs_read = tc / tr
    verdict = "PASS"
    printf "certs vs openssl:   %8.1fx faster   target >= 100x   %s\n", vs_openssl, \
        (vs_openssl >= 100 ? "PASS" : "FAIL")
    if (vs_openssl < 100) verdict = "FAIL"
    printf "certs vs read-only: %8.2fx slower   target <= 3x     %s\n", vs_read, \
        (vs_read <= 3 ? "PASS" : "FAIL")
    if (vs_read > 3) verdict = "FAIL"
    if (rss != "") {
        mib = rss / 1024
        printf "peak memory:        %8.1f MiB       target < 100 MiB %s\n", mib, (mib < 100 ? "PASS" : "FAIL")
        if (mib >= 100) verdict = "FAIL"
    } else {
        printf "peak memory:        not measured (no GNU time)      UNKNOWN\n"
        verdict = verdict " (memory not measured)"
    }
    print ""
    printf "verdict: %s\n", verdict
}'
exit 0
