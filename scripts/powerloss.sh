#!/usr/bin/env bash
# The long crash test: 20 power cuts of a lifeboat pod under mixed load, on powerfs
# (tests/e2e/powerfs.py), with the full-disk test and powerfs's own tests. Needs root
# (FUSE, tmpfs) and installs what it needs like scripts/test.sh. Extra arguments go
# to pytest; LIFEBOAT_POWERLOSS_SEED=N replays a run's kill moments.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v fusermount3 >/dev/null || {
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq fuse3 >/dev/null
}
if [ ! -x .venv/bin/python ] || ! cmp -s tests/e2e/requirements.txt .venv/requirements.txt; then
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r tests/e2e/requirements.txt
  cp tests/e2e/requirements.txt .venv/requirements.txt
fi
cargo build --locked
cd tests/e2e
LIFEBOAT_POWERLOSS=1 exec ../../.venv/bin/python -m pytest -q -s -p no:cacheprovider \
  test_powerfs.py test_full_disk.py test_powerloss.py "$@"
