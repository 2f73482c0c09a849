#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine and proves it works: the
# system user and its private data folder exist, the configuration and the unit are in
# place (and the unit verifies), and the installed binary serves as that user with the
# installed configuration, takes a podmin command through its admin socket, and stops
# cleanly. Removes the package again (its data folder and user stay, as Debian does).
# Needs root (or sudo). CI runs it after the test suite (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root=""; [ "$(id -u)" -ne 0 ] && as_root="sudo"

need_apt=()
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
command -v curl >/dev/null || need_apt+=(curl)
dpkg -s adduser >/dev/null 2>&1 || need_apt+=(adduser)
if [ ${#need_apt[@]} -gt 0 ]; then
  $as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --quiet

echo "== building the package (cargo deb)"
deb=$(cargo deb --locked 2>/dev/null | tail -n 1)
[ -f "$deb" ] || { echo "cargo deb made no package" >&2; exit 1; }
echo "   $deb ($(du -h "$deb" | cut -f1))"

echo "== installing it"
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "$(realpath "$deb")" >/dev/null
pid=""
cleanup() {
  [ -n "$pid" ] && $as_root kill -KILL "$pid" 2>/dev/null
  DEBIAN_FRONTEND=noninteractive $as_root apt-get remove -y -qq lifeboat >/dev/null 2>&1 || true
}
trap cleanup EXIT

fail() { echo "package test: $*" >&2; exit 1; }
getent passwd lifeboat >/dev/null || fail "no system user lifeboat"
[ "$(stat -c '%a %U' /var/lib/lifeboat)" = "700 lifeboat" ] || fail "/var/lib/lifeboat is $(stat -c '%a %U' /var/lib/lifeboat), not 700 lifeboat"
[ "$(stat -c '%a %U %G' /etc/lifeboat/lifeboat.toml)" = "640 root lifeboat" ] || fail "/etc/lifeboat/lifeboat.toml is $(stat -c '%a %U %G' /etc/lifeboat/lifeboat.toml)"
unit=$(ls /lib/systemd/system/lifeboat.service /usr/lib/systemd/system/lifeboat.service 2>/dev/null | head -n 1)
[ -n "$unit" ] || fail "the unit is not installed"
grep -q '^Type=notify' "$unit" || fail "the installed unit is not Type=notify"
verify=$(systemd-analyze verify "$unit" 2>&1 | grep -v -e 'lifeboat.service: Command' -e 'Failed to prepare' || true)
echo "$verify" | grep -qi 'lifeboat.service.*\(error\|unknown\|invalid\)' && fail "systemd-analyze verify: $verify"
/usr/bin/lifeboat --version | grep -q '^lifeboat ' || fail "the installed binary does not run"

echo "== starting the installed binary as lifeboat"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=/var/lib/lifeboat
user="pkg_$(date +%s)"
log=$(mktemp)
# setpriv runs the binary itself as lifeboat (runuser would put a session between the
# signal and the pod).
$as_root setpriv --reuid=lifeboat --regid=lifeboat --init-groups /usr/bin/lifeboat serve --config /etc/lifeboat/lifeboat.toml \
  --data-dir "$data" --listen "127.0.0.1:$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/nodeinfo/2.1" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/nodeinfo/2.1" | grep -q '"name":"lifeboat"' || { cat "$log"; fail "the installed pod does not serve NodeInfo"; }
echo 'a long password for the package test' | $as_root runuser -u lifeboat -- /usr/bin/lifeboat --config /etc/lifeboat/lifeboat.toml --data-dir "$data" user add "$user" --email "$user@example.org" >/dev/null
$as_root runuser -u lifeboat -- /usr/bin/lifeboat --config /etc/lifeboat/lifeboat.toml --data-dir "$data" user list | grep -q "$user" || fail "the podmin command did not reach the pod"

$as_root kill -TERM "$pid"
wait "$pid" || { cat "$log"; fail "the pod did not stop cleanly"; }
pid=""
grep -q "store flushed" "$log" || { cat "$log"; fail "no clean shutdown in the log"; }
echo "package test: PASSED (installed, served as lifeboat on 127.0.0.1:$port, podmin command, clean stop)"
