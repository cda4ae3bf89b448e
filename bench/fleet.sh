#!/usr/bin/env bash
# Benchmark: `certs inspect -o json` on the FLEET corpus (bench/fleet.rs: kubeadm clusters with
# CAs of their own under kubeadm's names, full node trees, 20 certificates a cluster) at sizes
# that double, next to the verify FLOOR (bench/floor.rs: walk + read + PEM + x509-parser + one
# aws-lc signature check per certificate against its issuer, one thread), in one run.
#
# Usage: bench/fleet.sh            (from any directory)
#
# Environment:
#   SIZES="50 100 200 400 500"  clusters per corpus (the largest, 500, is 10,000 certificates)
#   RUNS=3                      timed runs per measurement; the best is kept (cache warm)
#   FLEET_DIR=target/bench-fleet where the corpora live
#
# Corpora live in FLEET_DIR: `all/` holds the largest fleet, generated once (its RSA
# key pool in `fleet-keys/` is kept across runs), and `clusters-NNNN/` hard-links its first
# NNNN clusters. Before timing, every corpus is checked: the floor verifies every certificate,
# and inspect prints 20 per cluster, each signed by a CA of its own cluster, each with a key of
# its own cluster except the self-signed kubelet CA's (whose key kubelet never writes), every
# kubeconfig user's certificate linked and paired, every embedded cluster CA matched, and no
# findings. This is a measurement, not a test: it exits 0 whether or not a target is met, and
# prints the verdict. Figures are recorded in BENCHMARKS.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

SIZES=${SIZES:-50 100 200 400 500}
RUNS=${RUNS:-3}
NOW=2030-01-01T00:00:00Z
target_dir=${CARGO_TARGET_DIR:-$repo/target}
base=${FLEET_DIR:-$target_dir/bench-fleet}
certs=$target_dir/release/certs
floor=$target_dir/release/examples/bench-floor
fleet=$target_dir/release/examples/bench-fleet
read -r -a sizes <<<"$SIZES"
largest=0
for n in "${sizes[@]}"; do if ((n > largest)); then largest=$n; fi; done

say() { printf '==> %s\n' "$*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# RUNS runs of "$@" (stdout discarded): "WALL CPU RSS", the wall and CPU (user + system) seconds
# of the fastest run, from bash's `time` (millisecond precision), and the largest peak RSS (KiB)
# of all runs, from GNU time wrapped around the command.
best_of() {
    local best="" cpu="" rss=0 out wall u s m i
    local TIMEFORMAT='%3R %3U %3S'
    for ((i = 1; i <= RUNS; i++)); do
        out=$({ time "$gnu_time" -f %M -o "$rss_file" "$@" >/dev/null 2>&1; } 2>&1)
        read -r wall u s <<<"$out"
        m=$(tail -1 "$rss_file")
        if [[ -z $best ]] || awk -v a="$wall" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$wall
            cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }')
        fi
        if ((m > rss)); then rss=$m; fi
    done
    echo "$best $cpu $rss"
}

for tool in cargo awk python3 find; do
    command -v "$tool" >/dev/null || { echo "bench/fleet.sh: $tool is required" >&2; exit 1; }
done
gnu_time=/usr/bin/time
if ! "$gnu_time" -f %M true >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        say "installing GNU time (apt-get install time) to measure peak memory"
        apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
    fi
    "$gnu_time" -f %M true >/dev/null 2>&1 || { echo "bench/fleet.sh: GNU time is required" >&2; exit 1; }
fi

# --- build and corpora -----------------------------------------------------------------------
say "cargo build --release (certs, bench-fleet, bench-floor)"
cargo build --release --quiet
cargo build --release --quiet --example bench-fleet --example bench-floor

count() { find "$1" -type f -name "$2" 2>/dev/null | wc -l; }
want_all=$((largest * 38))
if [[ -d $base/all && $(find "$base/all" -type f | wc -l) == "$want_all" ]]; then
    say "reusing $base/all ($largest clusters)"
else
    say "generating $base/all ($largest clusters; the RSA key pool is made once, ~0.1 s a key)"
    rm -rf "$base/all" "$base"/clusters-*
    mkdir -p "$base"
    "$fleet" "$base/all" --clusters "$largest" --keys "$base/fleet-keys" >&2
fi
for n in "${sizes[@]}"; do
    dir=$base/clusters-$(printf %04d "$n")
    if [[ ! -d $dir || $(ls "$dir" | wc -l) != "$n" ]]; then
        rm -rf "$dir" && mkdir -p "$dir"
        for ((i = 0; i < n; i++)); do cp -al "$base/all/cluster-$(printf %04d "$i")" "$dir/"; done
    fi
done

# --- checks ----------------------------------------------------------------------------------
json=$(mktemp)
rss_file=$(mktemp)
trap 'rm -f "$json" "$rss_file"' EXIT
for n in "${sizes[@]}"; do
    dir=$base/clusters-$(printf %04d "$n")
    find "$dir" -type f -print0 | xargs -0 cat >/dev/null # warm the page cache
    got=$("$floor" "$dir")
    [[ $got == "certificates=$((n * 20)) verified=$((n * 20)) failed=0 "* ]] ||
        { echo "bench/fleet.sh: floor on $dir: $got" >&2; exit 1; }
    "$certs" inspect "$dir" -o json --now "$NOW" >"$json"
    python3 - "$json" "$dir" "$n" <<'EOF'
import json, sys
doc, root, n = json.load(open(sys.argv[1])), sys.argv[2].rstrip("/") + "/", int(sys.argv[3])
certs = doc["certificates"]
def cluster(loc):
    return loc[len(root):].split("/")[0] if loc and loc.startswith(root) else None
problems = []
if len(certs) != 20 * n:
    problems.append(f"{len(certs)} certificates, want {20 * n}")
for c in certs:
    where = cluster(c["path"])
    if cluster(c["signed_by"]) != where:
        problems.append(f"{c['path']}#{c['index']}: signed_by {c['signed_by']}")
    kubelet_ca = c["path"].endswith("/kubelet.crt") and c["index"] == 1
    if (cluster(c["key_path"]) != where) != kubelet_ca:
        problems.append(f"{c['path']}#{c['index']}: key_path {c['key_path']}")
if len(doc["kubeconfigs"]) != 6 * n:
    problems.append(f"{len(doc['kubeconfigs'])} kubeconfigs, want {6 * n}")
for kc in doc["kubeconfigs"]:
    for u in kc["users"]:
        cc = u["client_certificate"]
        if not (cc and cc.get("signed_by") and cc.get("key_matches")):
            problems.append(f"{kc['path']}: user {u['name']} {cc}")
    for cl in kc["clusters"]:
        if cluster(cl["matches_ca"]) != cluster(kc["path"]):
            problems.append(f"{kc['path']}: cluster CA matches {cl['matches_ca']}")
problems += [f"finding {f['code']} {f['path']}" for f in doc["findings"]]
if problems:
    sys.exit(f"{root}: {len(problems)} problems, first: " + "; ".join(problems[:3]))
print(f"==> ok: {n} clusters, {len(certs)} certificates, each signed by a CA of its cluster, "
      f"{len(doc['keys'])} keys, {len(doc['kubeconfigs'])} kubeconfigs linked, no findings",
      file=sys.stderr)
EOF
done

# --- measurements ----------------------------------------------------------------------------
load_start=$(load)
results=()
for n in "${sizes[@]}"; do
    dir=$base/clusters-$(printf %04d "$n")
    say "$n clusters ($((n * 20)) certificates, $(find "$dir" -type f | wc -l) files), best of $RUNS"
    read -r t_floor c_floor rss_floor <<<"$(best_of "$floor" "$dir")"
    read -r t_certs c_certs rss_certs <<<"$(best_of "$certs" inspect "$dir" -o json --now "$NOW")"
    say "  floor ${t_floor}s (CPU ${c_floor}s), inspect ${t_certs}s (CPU ${c_certs}s), peak RSS ${rss_certs} KiB"
    results+=("$n $t_floor $t_certs $rss_certs $rss_floor $c_floor $c_certs")
done
dir=$base/clusters-$(printf %04d "$largest")
t_one=""
if command -v taskset >/dev/null; then
    say "$largest clusters, inspect on one core (taskset -c 0), best of $RUNS"
    read -r t_one _ _ <<<"$(best_of taskset -c 0 "$certs" inspect "$dir" -o json --now "$NOW")"
fi
load_end=$(load)

# --- report ----------------------------------------------------------------------------------
echo
echo "certs inspect on the FLEET corpus: $(nproc) CPUs,"\
    "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), best of $RUNS runs, cache warm"
echo "load average at start: $load_start; at end: $load_end"
echo
printf '%s\n' "${results[@]}" | awk -v one="$t_one" '
{ n[NR] = $1; tf[NR] = $2; tc[NR] = $3; rss[NR] = $4; rf[NR] = $5; cf[NR] = $6; cc[NR] = $7 }
END {
    fmt = "%8s %7s %9s %9s %7s %9s %11s %7s %11s %10s\n"
    printf fmt, "clusters", "certs", "floor s", "inspect s", "ratio", "floor CPU", "inspect CPU",
        "ratio", "inspect RSS", "floor RSS"
    for (i = 1; i <= NR; i++)
        printf fmt, n[i], n[i] * 20, sprintf("%.3f", tf[i]), sprintf("%.3f", tc[i]),
            sprintf("%.2fx", tc[i] / tf[i]), sprintf("%.3f", cf[i]), sprintf("%.3f", cc[i]),
            sprintf("%.2fx", cc[i] / cf[i]), sprintf("%.1f MiB", rss[i] / 1024),
            sprintf("%.1f MiB", rf[i] / 1024)
    print "(s: wall seconds of the fastest run; CPU: its user + system seconds; RSS: the largest of the runs)"
    print ""
    for (i = 2; i <= NR; i++)
        printf "%5d -> %5d clusters (%4.1fx the corpus): inspect %5.2fx the time (%5.2fx the CPU), floor %5.2fx\n",
            n[1], n[i], n[i] / n[1], tc[i] / tc[1], cc[i] / cc[1], tf[i] / tf[1]
    print ""
    verdict = "PASS"
    L = NR
    ratio = tc[L] / tf[L]
    printf "inspect vs floor at %d certificates:  %6.2fx      target <= 1.0x     %s\n", n[L] * 20,
        ratio, (ratio <= 1.0 ? "PASS" : "FAIL")
    if (ratio > 1.0) verdict = "FAIL"
    for (i = 1; i < L; i++) if (n[L] == 10 * n[i]) f = i
    if (f) {
        scale = tc[L] / tc[f]
        printf "10x the corpus (%d -> %d clusters): %6.2fx      target <= 11x      %s\n", n[f], n[L],
            scale, (scale <= 11 ? "PASS" : "FAIL")
        if (scale > 11) verdict = "FAIL"
    } else
        print "10x the corpus: no two sizes 10x apart (set SIZES)"
    mib = rss[L] / 1024
    printf "peak RSS at %d certificates:          %6.1f MiB  target < 100 MiB   %s\n", n[L] * 20,
        mib, (mib < 100 ? "PASS" : "FAIL")
    if (mib >= 100) verdict = "FAIL"
    if (one != "")
        printf "inspect on one core (taskset -c 0) at %d certificates: %.3f s, %.2fx the floor\n",
            n[L] * 20, one, one / tf[L]
    print ""
    printf "verdict: %s\n", verdict
}'
exit 0
