#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs the real tools the tests drive
# (openssl, cfssl, etcd, nginx with its stream module, kubectl, promtool), then format, lint and every test. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null || need+=(openssl)
command -v cfssl >/dev/null || need+=(golang-cfssl)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v nginx >/dev/null || need+=(nginx)
[ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
command -v mkfifo >/dev/null || need+=(coreutils)
# kubectl reads the kubeconfigs the tool writes (on the machine image; Debian's otherwise).
command -v kubectl >/dev/null || need+=(kubernetes-client)
# promtool checks the -o prometheus text format.
command -v promtool >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install a Rust toolchain (rustup) first" >&2; exit 2; }

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
