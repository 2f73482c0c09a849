#!/usr/bin/env bash
# Runs lifeboat's whole test suite: Rust unit and integration tests, then the
# end-to-end tests (real lifeboat processes, a real SMTP server, headless Chromium,
# libsodium through PyNaCl). Installs what the tests need on a fresh Debian machine:
# Chromium, chromedriver and fuse3 from apt, Python modules into ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v fusermount3 >/dev/null || need_apt+=(fuse3)  # powerfs, the power-loss tests' filesystem
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then need_apt+=(python3-venv); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]} (apt)"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ] || ! cmp -s tests/e2e/requirements.txt .venv/requirements.txt; then
  echo "== preparing .venv (pip)"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/e2e/requirements.txt
  cp tests/e2e/requirements.txt .venv/requirements.txt
fi
export PATH="$PWD/.venv/bin:$PATH"

echo "== house plan (docs/architecture.md): import graph"
python3 scripts/import-graph.py --level top --check

echo "== cargo test"
cargo build --locked --all-targets
cargo test --locked

echo "== end-to-end tests"
cd tests/e2e
exec python -m pytest -q -p no:cacheprovider "$@"
