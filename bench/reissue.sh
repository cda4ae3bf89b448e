#!/usr/bin/env bash
# Benchmark: `certs reissue` on every leaf of a kubeadm control-plane node (fixtures/kubeadm:
# 7 leaves under 3 CAs), keeping keys and with --new-key (RSA 2048 and ECDSA P-256), next to
# two baselines for the same 7 certificates, measured in the same run:
#
#   cfssl    one `cfssl gencert -ca -ca-key -config -profile csr.json | cfssljson -bare` per
#            leaf (cfssl always generates a new key), csr.json from `certs spec` (not timed)
#   openssl  per leaf: `openssl req -new` (existing key, or -newkey rsa:2048 / ec P-256) then
#            `openssl x509 -req -CA -CAkey -extfile` with the leaf's subject, SANs, key usage
#            and extended key usage (ext files written before timing)
#
# Every certs row is one process for all 7 leaves; every baseline row is one `bash script`
# running the 14 (openssl) or 7x2 (cfssl | cfssljson) processes; the cost of starting that
# bash is measured separately ("bash, empty script") and NOT subtracted.
#
# Usage: bench/reissue.sh            (from any directory)
#
# Environment:
#   RUNS=20     timed runs per measurement; the median is reported (min and max alongside)
#   WARMUP=2    untimed runs before each measurement
#   KEEP_WORK=1 keep the temporary work tree (bundles, baseline scripts and outputs) for inspection
#
# Timing uses hyperfine (-N, no shell; installed with apt-get when missing and running as root)
# or, without it, a loop of `date +%s%N` around each run. Works on a copy of fixtures/kubeadm in
# a temporary directory; the certs binary is copied there after `cargo build --release` so a
# concurrent rebuild cannot swap it mid-run. This is a measurement, not a test: it exits 0
# whether or not the target is met, and prints the verdict. Figures are recorded in
# bench/reissue-results.md (merged into BENCHMARKS.md).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-2}
SAN=10.21.22.101
TARGET_MS=100
target_dir=${CARGO_TARGET_DIR:-$repo/target}
LEAVES=(apiserver apiserver-kubelet-client apiserver-etcd-client front-proxy-client
    etcd/server etcd/peer etcd/healthcheck-client)
N=${#LEAVES[@]}

say() { printf '==> %s\n' "$*" >&2; }
# The CA (path without extension, relative to pki/) that signs a kubeadm leaf.
ca_of() {
    case $1 in
        apiserver-etcd-client | etcd/*) echo etcd/ca ;;
        front-proxy-client) echo front-proxy-ca ;;
        *) echo ca ;;
    esac
}
flat() { echo "${1//\//-}"; } # etcd/server -> etcd-server

# --- prerequisites ---------------------------------------------------------------------------
for tool in cargo openssl cfssl cfssljson python3 awk; do
    command -v "$tool" >/dev/null || { echo "bench/reissue.sh: $tool is required" >&2; exit 1; }
done
if ! command -v hyperfine >/dev/null && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing hyperfine (apt-get install hyperfine)"
    apt-get install -y -qq hyperfine >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null 2>&1; } || true
fi
if command -v hyperfine >/dev/null; then
    timer="$(hyperfine --version)"
else
    timer="manual loop (date +%s%N)"
    say "hyperfine not available: timing with a date +%s%N loop"
fi

# --- build and work tree ---------------------------------------------------------------------
say "cargo build --release"
cargo build --release --quiet
work=$(mktemp -d "${TMPDIR:-/tmp}/certs-bench-reissue.XXXXXX")
if [[ -n ${KEEP_WORK:-} ]]; then trap 'say "work tree kept: $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi
cp "$target_dir/release/certs" "$work/certs"
certs=$work/certs
cp -r "$repo/fixtures/kubeadm" "$work/node"
pki=$work/node/etc/kubernetes/pki
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$repo" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || rev="$rev (+ uncommitted changes)"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

leaf_paths=()
for l in "${LEAVES[@]}"; do leaf_paths+=("$pki/$l.crt"); done

# --- baseline inputs (not timed) -------------------------------------------------------------
say "writing csr.json (certs spec), ca-config.json, openssl ext files and the baseline scripts"
mkdir -p "$work/spec/rsa" "$work/spec/ecdsa" "$work/ext" "$work/out"
cat >"$work/ca-config.json" <<'EOF'
{
  "signing": {
    "default": { "expiry": "8760h" },
    "profiles": {
      "kubernetes": {
        "expiry": "8760h",
        "usages": ["signing", "key encipherment", "server auth", "client auth"]
      }
    }
  }
}
EOF
for l in "${LEAVES[@]}"; do
    f=$(flat "$l")
    "$certs" spec "$pki/$l.crt" --add-san "$SAN" >"$work/spec/rsa/$f.json"
    openssl x509 -in "$pki/$l.crt" -noout -ext keyUsage,extendedKeyUsage >"$work/ext/$f.txt"
done
# ECDSA P-256 variants of the specs; openssl subject strings and ext files from spec + original.
python3 - "$work" "${LEAVES[@]}" <<'EOF'
import ipaddress, json, sys
work, leaves = sys.argv[1], sys.argv[2:]
KU = {"Digital Signature": "digitalSignature", "Non Repudiation": "nonRepudiation",
      "Content Commitment": "nonRepudiation", "Key Encipherment": "keyEncipherment",
      "Data Encipherment": "dataEncipherment", "Key Agreement": "keyAgreement",
      "Certificate Sign": "keyCertSign", "CRL Sign": "cRLSign"}
EKU = {"TLS Web Server Authentication": "serverAuth", "TLS Web Client Authentication": "clientAuth",
       "Code Signing": "codeSigning", "E-mail Protection": "emailProtection"}
for leaf in leaves:
    f = leaf.replace("/", "-")
    spec = json.load(open(f"{work}/spec/rsa/{f}.json"))
    spec["key"] = {"algo": "ecdsa", "size": 256}
    json.dump(spec, open(f"{work}/spec/ecdsa/{f}.json", "w"), indent=2)
    esc = lambda v: v.replace("\\", "\\\\").replace("/", "\\/")
    subj = ""
    for name in spec.get("names", []):
        for k in ("C", "ST", "L", "O", "OU"):
            if name.get(k):
                subj += f"/{k}={esc(name[k])}"
    subj += f"/CN={esc(spec['CN'])}"
    open(f"{work}/ext/{f}.subj", "w").write(subj)
    sans = []
    for h in spec.get("hosts", []):
        try:
            sans.append("IP:" + str(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(("URI:" if "://" in h else "email:" if "@" in h else "DNS:") + h)
    lines = ["basicConstraints = critical, CA:FALSE"]
    text = open(f"{work}/ext/{f}.txt").read().splitlines()
    for i, line in enumerate(text):
        crit = "critical, " if line.rstrip().endswith("critical") else ""
        if line.startswith("X509v3 Key Usage"):
            lines.append(f"keyUsage = {crit}" + ", ".join(KU[u.strip()] for u in text[i + 1].split(",")))
        elif line.startswith("X509v3 Extended Key Usage"):
            lines.append(f"extendedKeyUsage = {crit}" + ", ".join(EKU[u.strip()] for u in text[i + 1].split(",")))
    lines += ["subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]
    if sans:
        lines.append("subjectAltName = " + ", ".join(sans))
    open(f"{work}/ext/{f}.cnf", "w").write("\n".join(lines) + "\n")
EOF

# Baseline scripts: one line (or two) per leaf, run by one bash per timed run.
write_cfssl() { # $1 = rsa | ecdsa
    local s=$work/cfssl-$1.sh o=$work/out/cfssl-$1 l f ca
    mkdir -p "$o"
    echo 'set -e -o pipefail' >"$s"
    for l in "${LEAVES[@]}"; do
        f=$(flat "$l") ca=$pki/$(ca_of "$l")
        printf 'cfssl gencert -ca=%q -ca-key=%q -config=%q -profile=kubernetes %q 2>/dev/null | cfssljson -bare %q\n' \
            "$ca.crt" "$ca.key" "$work/ca-config.json" "$work/spec/$1/$f.json" "$o/$f" >>"$s"
    done
}
write_openssl() { # $1 = keep | rsa | ecdsa
    local s=$work/openssl-$1.sh o=$work/out/openssl-$1 l f ca key
    mkdir -p "$o"
    echo 'set -e' >"$s"
    for l in "${LEAVES[@]}"; do
        f=$(flat "$l") ca=$pki/$(ca_of "$l")
        case $1 in
            keep) key=(-key "$pki/$l.key") ;;
            rsa) key=(-newkey rsa:2048 -nodes -keyout "$o/$f.key") ;;
            ecdsa) key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$o/$f.key") ;;
        esac
        printf 'openssl req -new %s -subj %q -out %q 2>/dev/null\n' \
            "$(printf '%q ' "${key[@]}")" "$(cat "$work/ext/$f.subj")" "$o/$f.csr" >>"$s"
        printf 'openssl x509 -req -in %q -CA %q -CAkey %q -CAserial %q -CAcreateserial -days 365 -extfile %q -out %q 2>/dev/null\n' \
            "$o/$f.csr" "$ca.crt" "$ca.key" "$work/out/$(flat "$(ca_of "$l")").srl" "$work/ext/$f.cnf" "$o/$f.crt" >>"$s"
    done
}
write_cfssl rsa
write_cfssl ecdsa
write_openssl keep
write_openssl rsa
write_openssl ecdsa
: >"$work/empty.sh"

# --- measurement -----------------------------------------------------------------------------
# measure KEY PREPARE CMD...: runs CMD (no shell) RUNS times after WARMUP untimed runs, PREPARE
# (a directory to delete, or "") before each; appends "KEY median_ms min_ms max_ms" to results.
results=$work/results.txt
: >"$results"
measure() {
    local key=$1 prep=$2
    shift 2
    say "$key: ${*//$work/\$W}"
    if command -v hyperfine >/dev/null; then
        local cmd="" a json=$work/hf-$key.json
        for a in "$@"; do cmd+="$(printf '%q ' "$a")"; done
        hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" \
            --prepare "rm -rf ${prep:-$work/nothing}" --export-json "$json" "$cmd" >/dev/null
        python3 - "$json" "$key" >>"$results" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(sys.argv[2], "%.3f %.3f %.3f" % (r["median"] * 1e3, r["min"] * 1e3, r["max"] * 1e3))
EOF
    else
        local i t0 t1 times=()
        for ((i = 0; i < WARMUP + RUNS; i++)); do
            [[ -n $prep ]] && rm -rf "$prep"
            t0=$(date +%s%N)
            "$@" >/dev/null 2>&1
            t1=$(date +%s%N)
            ((i >= WARMUP)) && times+=($((t1 - t0)))
        done
        printf '%s\n' "${times[@]}" | sort -n | awk -v k="$key" '
            { t[NR] = $1 }
            END { m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
                  printf "%s %.3f %.3f %.3f\n", k, m / 1e6, t[1] / 1e6, t[NR] / 1e6 }' >>"$results"
    fi
    tail -1 "$results" | awk '{ printf "==>   median %s ms (min %s, max %s)\n", $2, $3, $4 }' >&2
}

measure certs-keep "$work/out/a" "$certs" reissue "${leaf_paths[@]}" --add-san "$SAN" --out "$work/out/a"
measure certs-rsa "$work/out/b" "$certs" reissue "${leaf_paths[@]}" --add-san "$SAN" --new-key --out "$work/out/b"
measure certs-ecdsa "$work/out/c" "$certs" reissue "${leaf_paths[@]}" --add-san "$SAN" --new-key --key-algo ecdsa:256 --out "$work/out/c"
measure cfssl-rsa "" bash "$work/cfssl-rsa.sh"
measure cfssl-ecdsa "" bash "$work/cfssl-ecdsa.sh"
measure openssl-keep "" bash "$work/openssl-keep.sh"
measure openssl-rsa "" bash "$work/openssl-rsa.sh"
measure openssl-ecdsa "" bash "$work/openssl-ecdsa.sh"
# References for reading the figures (not compared against anything).
measure certs-one "$work/out/one" "$certs" reissue "$pki/apiserver.crt" --add-san "$SAN" --out "$work/out/one"
measure certs-version "" "$certs" --version
measure bash-empty "" bash "$work/empty.sh"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- correctness (not timed) -----------------------------------------------------------------
# One more run of each certs variant into fresh bundles, then every written certificate (certs
# and baselines) is checked: openssl verify against its CA, the added SAN present, and the key
# kept (certs keep: same public key as the original) or matching (new keys: the .key in the
# bundle / output holds the certificate's public key, of the asked algorithm).
say "checking every certificate written (openssl verify against its CA, SAN, key)"
mkdir -p "$work/check"
"$certs" reissue "${leaf_paths[@]}" --add-san "$SAN" --out "$work/check/a" >/dev/null
"$certs" reissue "${leaf_paths[@]}" --add-san "$SAN" --new-key --out "$work/check/b" >/dev/null
"$certs" reissue "${leaf_paths[@]}" --add-san "$SAN" --new-key --key-algo ecdsa:256 --out "$work/check/c" >/dev/null
# SubjectPublicKeyInfo PEM of a certificate / of a private key file ("" if unreadable).
pub() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null || true; }
keypub() { openssl pkey -in "$1" -pubout 2>/dev/null || true; }
check() { # method cert ca original key-file|- algorithm
    local m=$1 crt=$2 ca=$3 orig=$4 kf=$5 algo=$6 why=""
    [[ -f $crt ]] || { echo "$m FAIL ${crt#"$work"/} missing"; return; }
    openssl verify -CAfile "$ca" "$crt" >/dev/null 2>&1 || why+=" verify"
    openssl x509 -in "$crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:$SAN" || why+=" no-SAN"
    [[ -n $(pub "$crt") ]] || why+=" unreadable"
    if [[ $kf == - ]]; then
        [[ $(pub "$crt") == "$(pub "$orig")" ]] || why+=" key-changed"
    else
        [[ $(pub "$crt") == "$(keypub "$kf")" ]] || why+=" key-mismatch"
        [[ $(pub "$crt") != "$(pub "$orig")" ]] || why+=" key-not-new"
    fi
    openssl x509 -in "$crt" -noout -text | grep -q "Public Key Algorithm: $algo" || why+=" not-$algo"
    if [[ -z $why ]]; then echo "$m PASS"; else echo "$m FAIL ${crt#"$work"/}:$why"; fi
}
checks=$work/checks.txt
: >"$checks"
for l in "${LEAVES[@]}"; do
    f=$(flat "$l") ca=$pki/$(ca_of "$l").crt
    {
        o=$pki/$l.crt r=rsaEncryption e=id-ecPublicKey
        check certs-keep "$work/check/a/$l.crt" "$ca" "$o" - "$r"
        check certs-rsa "$work/check/b/$l.crt" "$ca" "$o" "$work/check/b/$l.key" "$r"
        check certs-ecdsa "$work/check/c/$l.crt" "$ca" "$o" "$work/check/c/$l.key" "$e"
        check cfssl-rsa "$work/out/cfssl-rsa/$f.pem" "$ca" "$o" "$work/out/cfssl-rsa/$f-key.pem" "$r"
        check cfssl-ecdsa "$work/out/cfssl-ecdsa/$f.pem" "$ca" "$o" "$work/out/cfssl-ecdsa/$f-key.pem" "$e"
        check openssl-keep "$work/out/openssl-keep/$f.crt" "$ca" "$o" - "$r"
        check openssl-rsa "$work/out/openssl-rsa/$f.crt" "$ca" "$o" "$work/out/openssl-rsa/$f.key" "$r"
        check openssl-ecdsa "$work/out/openssl-ecdsa/$f.crt" "$ca" "$o" "$work/out/openssl-ecdsa/$f.key" "$e"
    } >>"$checks"
done
grep FAIL "$checks" >&2 || true

# --- report ----------------------------------------------------------------------------------
echo
echo "certs reissue benchmark: the $N leaves of fixtures/kubeadm (3 CAs), --add-san $SAN"
echo "$(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "certs $rev; $(openssl version | cut -d' ' -f1-2); cfssl $(cfssl version | awk '/^Version/ { print $2 }'); $timer"
echo "median of $RUNS runs (after $WARMUP warm-up), wall clock; load average $load_start at start, $load_end at end"
echo
awk -v n="$N" -v target="$TARGET_MS" -v checks="$checks" '
function row(key, label, keys, tgt,    ok, fails) {
    ok = (key in pass) ? pass[key] : 0
    fails = (key in fail) ? fail[key] : 0
    printf "| %-53s | %-9s | %9.1f | %7.1f | %15s | %-6s | %-6s |\n", label, keys, med[key], med[key] / n,
        sprintf("%.1f-%.1f", lo[key], hi[key]), sprintf("%d/%d", ok, ok + fails), tgt
}
FILENAME == checks { if ($2 == "PASS") pass[$1]++; else fail[$1]++; next }
{ med[$1] = $2; lo[$1] = $3; hi[$1] = $4 }
END {
    printf "| %-53s | %-9s | %9s | %7s | %15s | %-6s | %-6s |\n", "method (the 7 leaves)", "keys", "total ms", "ms/cert", "min-max ms", "checks", "<" target "ms"
    printf "|%s|%s|%s|%s|%s|%s|%s|\n", "-------------------------------------------------------", "-----------", \
        "----------:", "--------:", "----------------:", "--------", "--------"
    t = (med["certs-keep"] < target && !fail["certs-keep"]) ? "PASS" : "FAIL"
    row("certs-keep", "a. certs reissue (one process)", "kept", t)
    row("certs-rsa", "b. certs reissue --new-key (RSA 2048)", "new RSA", "")
    row("certs-ecdsa", "c. certs reissue --new-key --key-algo ecdsa:256", "new P-256", "")
    row("cfssl-rsa", "d. cfssl gencert \\| cfssljson, per cert (RSA 2048)", "new RSA", "")
    row("cfssl-ecdsa", "d. cfssl gencert \\| cfssljson, per cert (ECDSA P-256)", "new P-256", "")
    row("openssl-keep", "e. openssl req -key + x509 -req, per cert", "kept", "")
    row("openssl-rsa", "e. openssl req -newkey rsa:2048 + x509 -req", "new RSA", "")
    row("openssl-ecdsa", "e. openssl req -newkey ec P-256 + x509 -req", "new P-256", "")
    print ""
    print "references (not part of the comparison):"
    printf "  certs reissue, 1 leaf (apiserver), keys kept:   %7.1f ms\n", med["certs-one"]
    printf "  certs --version (process start, no crypto):     %7.1f ms\n", med["certs-version"]
    printf "  bash, empty script (included in every d/e row): %7.1f ms\n", med["bash-empty"]
    printf "  a minus 1-leaf run: %.1f ms for the 6 more leaves, %.1f ms per extra leaf\n", \
        med["certs-keep"] - med["certs-one"], (med["certs-keep"] - med["certs-one"]) / (n - 1)
    printf "  b minus a: %.1f ms for 7 RSA 2048 keys, %.1f ms per key; c minus a: %.1f ms per P-256 key\n", \
        med["certs-rsa"] - med["certs-keep"], (med["certs-rsa"] - med["certs-keep"]) / n, \
        (med["certs-ecdsa"] - med["certs-keep"]) / n
    printf "  cfssl RSA / certs b: %.1fx   openssl RSA / certs b: %.1fx   openssl keep / certs a: %.1fx\n", \
        med["cfssl-rsa"] / med["certs-rsa"], med["openssl-rsa"] / med["certs-rsa"], med["openssl-keep"] / med["certs-keep"]
    print ""
    printf "verdict: a whole node'\''s %d leaves, keys kept, in %.1f ms (median): %s (target < %d ms)%s\n", \
        n, med["certs-keep"], t, target, fail["certs-keep"] ? "; its output failed the checks" : ""
}' "$checks" "$results"
exit 0
