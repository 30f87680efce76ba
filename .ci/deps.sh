#!/usr/bin/env bash
# Installs what the test suite needs on Debian 12, only if it is missing:
# a real Netdata (1.37), headless Chromium for the dashboard screenshot,
# setcap/getcap, rpm (reads back the .rpm of make rpm; no rpm system here),
# and Netdata 2.11 from ../shared (.ci/netdata2.sh). Netdata's package does
# not start a daemon here (no systemd); the tests start their own throwaway
# Netdata on loopback.
set -euo pipefail
# Netdata 2.11 for the test matrix; outside CI a missing tarball only skips.
rc=0; "$(dirname "$0")/netdata2.sh" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"
need=()
command -v netdata >/dev/null || [ -x /usr/sbin/netdata ] || need+=(netdata)
command -v chromium >/dev/null || need+=(chromium)
command -v setcap >/dev/null || need+=(libcap2-bin)
command -v python3 >/dev/null || need+=(python3)
command -v rpm >/dev/null || need+=(rpm) # reads back the .rpm built by make rpm
# systemd-analyze: installtest judges netdata.service's drop-ins with systemd's
# own loader, offline (--root); systemd is not started.
command -v systemd-analyze >/dev/null || need+=(systemd)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing test dependencies: ${need[*]} (run as root, or: apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing test dependencies: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
