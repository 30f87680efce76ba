#!/usr/bin/env bash
# Installs Netdata 2.11 for the test matrix into /opt/netdata2 (ND2_PREFIX), if
# missing, from ../shared/netdata-2.11/ beside the repository (ND2_DIST): its
# Debian runtime libraries with apt, then the tarball with file capabilities.
# Debian 12 packages only Netdata 1.37. Exit status: 0 installed (or already
# there), 3 the tarball is missing outside CI (the 2.11 tests then skip),
# 1 anything else (and a missing tarball under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${ND2_PREFIX:-/opt/netdata2}
DIST=${ND2_DIST:-../shared/netdata-2.11}
TARBALL=$DIST/netdata-2.11.0-debian12-amd64.tar.gz
LIBS=(libbrotli1 libcap2 libcurl4 libjson-c5 liblz4-1 libpcre2-8-0 libssl3 libsystemd0
	libuuid1 libuv1 libyaml-0-2 libzstd1 zlib1g)

installed() { [ -x "$PREFIX/usr/sbin/netdata" ] && [ -x "$PREFIX/ndlab2.sh" ]; }
installed && exit 0
if [ ! -f "$TARBALL" ]; then
	if [ "${CI:-}" = true ]; then
		echo "netdata 2.11: $TARBALL is missing (CI needs ../shared beside the repository)" >&2
		exit 1
	fi
	echo "netdata 2.11: $TARBALL is missing: the Netdata 2.11 tests will skip" >&2
	exit 3
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "netdata 2.11: not installed in $PREFIX (run as root: $0)" >&2
	exit 1
fi
# Several test processes may want it at once.
exec 9>/run/lock/auditplugin-netdata2-install.lock
flock -w 300 9
installed && exit 0
need=()
for p in "${LIBS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "netdata 2.11: installing its libraries: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
tmp=$(mktemp -d "$(dirname "$PREFIX")/.netdata2-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar --xattrs --xattrs-include=security.capability -xzf "$TARBALL" -C "$tmp"
mv "$tmp/netdata2" "$PREFIX"
echo "netdata 2.11: installed in $PREFIX from $TARBALL"
