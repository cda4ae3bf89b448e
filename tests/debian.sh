#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs the real tools the tests drive
# (openssl, cfssl, etcd, nginx with its stream module, kubectl, promtool, groff, ansible-core,
# strace; ansible-lint from PyPI when it installs), then format, lint and every test.
# `.ci/run` calls exactly this.
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
# The tests signal processes with /bin/kill (bash's `command -v kill` finds only its builtin).
[ -x /bin/kill ] || [ -x /usr/bin/kill ] || need+=(procps)
# kubectl reads the kubeconfigs the tool writes (on the machine image; Debian's otherwise).
command -v kubectl >/dev/null || need+=(kubernetes-client)
# promtool checks the -o prometheus text format.
command -v promtool >/dev/null || need+=(prometheus)
# groff reads the man pages `certs man` prints.
command -v groff >/dev/null || need+=(groff-base)
# certs cluster: the generated playbook is run by real ansible-playbook (tests/cli/cluster/),
# whose test also traces the files each play opens.
command -v ansible-playbook >/dev/null || need+=(ansible-core)
command -v strace >/dev/null || need+=(strace)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# ansible-lint comes from PyPI only: when it cannot be installed (no network, no wheel), the
# lint of the generated playbook is skipped, saying why; nothing else depends on it.
if ! command -v ansible-lint >/dev/null; then
  lint_venv="${CERTS_LINT_VENV:-$HOME/.cache/certs-ansible-lint}"
  if [ -x "$lint_venv/bin/ansible-lint" ] ||
    { python3 -m venv "$lint_venv" >/dev/null 2>&1 &&
      timeout 600 "$lint_venv/bin/pip" install -q ansible-lint >/dev/null 2>&1; }; then
    export PATH="$PATH:$lint_venv/bin"
  else
    echo "ansible-lint could not be installed from PyPI: the ansible-lint check of the generated playbook is skipped"
  fi
fi
command -v cargo >/dev/null || { echo "cargo not found: install a Rust toolchain (rustup) first" >&2; exit 2; }

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
