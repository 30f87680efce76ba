#!/usr/bin/env bash
# install.sh: install audit.plugin into a Netdata installation, or remove it.
#
# What it installs, and why each piece:
#   PLUGINS_DIR/audit.plugin        root:GROUP 0750 with the file capability
#                                   cap_audit_control+ep: Netdata runs plugins
#                                   unprivileged, and reading the kernel audit
#                                   status needs CAP_AUDIT_CONTROL. No setuid.
#   HEALTH_DIR/linux_audit.conf     the alerts, among Netdata's stock alerts so
#                                   that `edit-config health.d/linux_audit.conf`
#                                   works. Not audit.conf: Netdata 2.11+ ships
#                                   a health.d/audit.conf of its own.
#   /etc/systemd/system/netdata.service.d/audit-plugin.conf
#                                   only where netdata.service's capability
#                                   bounding set lacks CAP_AUDIT_CONTROL (it
#                                   would mask the file capability).
# Everything it creates is listed in a manifest, so --uninstall removes exactly
# that, and a second run compares before writing and changes nothing.
#
# Run ./install.sh --help for the options.

set -eu

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")" && pwd)

PLUGIN_NAME=audit.plugin
ALERT_NAME=linux_audit.conf
DROPIN_NAME=audit-plugin.conf
MANIFEST_DIR_T=/var/lib/netdata-audit-plugin # "_T": a path on the target system
MANIFEST_T=$MANIFEST_DIR_T/manifest
TAB=$(printf '\t')

# Options.
BINARY=
PLUGINS_DIR_T=
HEALTH_DIR_T=
ALERT_SRC=$SRC_DIR/health.d/audit.conf
ROOT=/
GROUP=netdata
NO_ALERTS=0
NO_SYSTEMD=0
UNINSTALL=0
DRY_RUN=0

usage() {
	cat <<EOF
Usage: $PROG [options]
       $PROG --uninstall [--dry-run] [--root DIR]

Installs audit.plugin, the Netdata plugin that charts the Linux kernel audit
status, into the Netdata found on this machine. Run it as root.

  - builds the plugin with Go from this source tree, unless --binary is given;
  - installs PLUGINS_DIR/$PLUGIN_NAME as root:$GROUP, mode 0750, with the file
    capability cap_audit_control+ep (no setuid);
  - installs the alerts as HEALTH_DIR/$ALERT_NAME among Netdata's stock alerts
    (customise them with: edit-config health.d/$ALERT_NAME);
  - if netdata.service's CapabilityBoundingSet lacks CAP_AUDIT_CONTROL, adds
    the drop-in /etc/systemd/system/netdata.service.d/$DROPIN_NAME
    (then: systemctl daemon-reload && systemctl restart netdata);
  - records what it created in $MANIFEST_T.
A second run changes nothing ("unchanged") unless something differs.

Netdata is looked for in, in this order (exactly one must exist):
  /usr/libexec/netdata/plugins.d              Netdata's native packages
  /usr/lib/netdata/plugins.d                  Debian's and Ubuntu's package
  /opt/netdata/usr/libexec/netdata/plugins.d  Netdata's static install

Options:
  --binary PATH       install this audit.plugin instead of building one
  --plugins-dir DIR   Netdata's plugins.d directory (skips the search)
  --health-dir DIR    Netdata's stock health.d directory (default: the one that
                      goes with the plugins directory)
  --alert-file FILE   the alert file to install
                      (default: $SRC_DIR/health.d/audit.conf)
  --no-alerts         do not install an alert file
  --no-systemd        do not install the systemd drop-in
  --group NAME        the group Netdata runs as (default: netdata)
  --root DIR          act on the file tree under DIR instead of / (for tests
                      and images); every other path is inside DIR
  --uninstall         remove what the manifest lists, and nothing else
  -n, --dry-run       print what would be done and change nothing
  -h, --help          this help

Exit status: 0 done (or nothing to do), 1 refused or failed, 2 bad usage.
EOF
}

# ---------------------------------------------------------------------------
# Messages. A refusal is one line on stderr naming the problem and the fix.

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: %s\n' "$PROG" "$*" >&2
	exit 1
}
usage_error() {
	printf '%s: %s (see %s --help)\n' "$PROG" "$*" "$PROG" >&2
	exit 2
}

# One line per file: "  ACTION  PATH (details)".
report() { printf '  %-18s %s\n' "$1" "$2"; }

# ---------------------------------------------------------------------------
# Arguments.

parse_args() {
	while [ $# -gt 0 ]; do
		opt=$1
		val=
		case $opt in
		--*=*)
			val=${opt#*=}
			opt=${opt%%=*}
			;;
		--binary | --plugins-dir | --health-dir | --alert-file | --group | --root)
			[ $# -ge 2 ] || usage_error "$opt needs a value"
			val=$2
			shift
			;;
		esac
		case $opt in
		--binary) BINARY=$val ;;
		--plugins-dir) PLUGINS_DIR_T=$val ;;
		--health-dir) HEALTH_DIR_T=$val ;;
		--alert-file) ALERT_SRC=$val ;;
		--group) GROUP=$val ;;
		--root) ROOT=$val ;;
		--no-alerts) NO_ALERTS=1 ;;
		--no-systemd) NO_SYSTEMD=1 ;;
		--uninstall) UNINSTALL=1 ;;
		--dry-run | -n) DRY_RUN=1 ;;
		-h | --help)
			usage
			exit 0
			;;
		*) usage_error "unknown option: $opt" ;;
		esac
		shift
	done
	for v in "$BINARY" "$PLUGINS_DIR_T" "$HEALTH_DIR_T" "$ALERT_SRC" "$GROUP" "$ROOT"; do
		case $v in *"$TAB"* | *'
'*) usage_error "paths with tabs or newlines are not supported: $v" ;;
		esac
	done
	if [ -n "$PLUGINS_DIR_T" ]; then case $PLUGINS_DIR_T in /*) ;; *) usage_error "--plugins-dir must be an absolute path" ;; esac fi
	if [ -n "$HEALTH_DIR_T" ]; then case $HEALTH_DIR_T in /*) ;; *) usage_error "--health-dir must be an absolute path" ;; esac fi
}

# ---------------------------------------------------------------------------
# Paths. Variables ending in _T are paths as the target system sees them (what
# the manifest stores); host paths are "$RP$path", RP being --root without its
# trailing slash ("" for /).

RP=
setup_root() {
	[ -d "$ROOT" ] || die "--root $ROOT is not a directory; pass an existing directory"
	RP=$(cd "$ROOT" && pwd -P)
	[ "$RP" = / ] && RP=
	return 0
}
h() { printf '%s%s' "$RP" "$1"; }

# ---------------------------------------------------------------------------
# Preconditions. Each refuses before anything is changed.

require_root() {
	[ "$(id -u)" = 0 ] && return 0
	die "must run as root: it installs into Netdata's plugins directory and sets a file capability; run it with sudo: sudo $0${ARGS:+ $ARGS}"
}

require_libcap_tools() {
	for t in setcap getcap; do
		command -v "$t" >/dev/null 2>&1 ||
			die "$t not found (PATH=$PATH): it gives audit.plugin the CAP_AUDIT_CONTROL file capability; install it: apt-get install libcap2-bin (Debian/Ubuntu), dnf install libcap (Fedora/RHEL), apk add libcap (Alpine)"
	done
}

require_group() {
	getent group "$GROUP" >/dev/null 2>&1 ||
		die "group '$GROUP' does not exist: the plugin is installed as root:$GROUP so that only Netdata can run it; install Netdata first, or pass --group with the group Netdata runs as"
}

# find_netdata sets PLUGINS_DIR_T, HEALTH_DIR_T, LAYOUT and CONFIG_DIR_T.
find_netdata() {
	if [ -n "$PLUGINS_DIR_T" ]; then
		[ -d "$(h "$PLUGINS_DIR_T")" ] ||
			die "Netdata not found: the plugins directory $(h "$PLUGINS_DIR_T") given with --plugins-dir does not exist; install Netdata or pass the directory that holds Netdata's *.plugin files"
		LAYOUT="given with --plugins-dir"
	else
		found=
		for d in /usr/libexec/netdata/plugins.d /usr/lib/netdata/plugins.d /opt/netdata/usr/libexec/netdata/plugins.d; do
			[ -d "$(h "$d")" ] && found="$found${found:+ }$d"
		done
		case $found in
		"") die "Netdata not found: none of /usr/libexec/netdata/plugins.d, /usr/lib/netdata/plugins.d, /opt/netdata/usr/libexec/netdata/plugins.d exists${RP:+ under $RP}; install Netdata first, or pass its plugins directory with --plugins-dir DIR" ;;
		*" "*) die "several Netdata installs found ($found); choose one with --plugins-dir DIR" ;;
		esac
		PLUGINS_DIR_T=$found
		case $found in
		/usr/libexec/*) LAYOUT="Netdata's native package" ;;
		/usr/lib/*) LAYOUT="Debian's netdata package" ;;
		/opt/*) LAYOUT="Netdata's static install" ;;
		esac
	fi

	# The stock config sits beside the plugins: .../usr/libexec/netdata/plugins.d
	# goes with .../usr/lib/netdata/conf.d, and .../lib/netdata/plugins.d with
	# .../lib/netdata/conf.d.
	base=
	stock=
	case $PLUGINS_DIR_T in
	*/usr/libexec/netdata/plugins.d)
		base=${PLUGINS_DIR_T%/usr/libexec/netdata/plugins.d}
		stock=$base/usr/lib/netdata/conf.d
		;;
	*/lib/netdata/plugins.d)
		base=${PLUGINS_DIR_T%/usr/lib/netdata/plugins.d}
		[ "$base" = "$PLUGINS_DIR_T" ] && base=
		stock=${PLUGINS_DIR_T%/plugins.d}/conf.d
		;;
	esac
	CONFIG_DIR_T=$base/etc/netdata
	NETDATA_BIN_T=
	for b in "$base/bin/netdata" "$base/usr/sbin/netdata" "$base/usr/bin/netdata"; do
		[ -x "$(h "$b")" ] && [ -f "$(h "$b")" ] && NETDATA_BIN_T=$b && break
	done

	[ "$NO_ALERTS" = 1 ] && return 0
	if [ -z "$HEALTH_DIR_T" ]; then
		[ -n "$stock" ] ||
			die "cannot tell Netdata's stock health directory for the plugins directory $PLUGINS_DIR_T; pass it with --health-dir DIR (or --no-alerts)"
		HEALTH_DIR_T=$stock/health.d
	fi
	[ -d "$(h "$HEALTH_DIR_T")" ] ||
		die "Netdata's stock health directory $(h "$HEALTH_DIR_T") does not exist; pass the directory holding Netdata's stock alert *.conf files with --health-dir DIR (or --no-alerts)"
}

require_alert_file() {
	[ "$NO_ALERTS" = 1 ] && return 0
	{ [ -f "$ALERT_SRC" ] && [ -r "$ALERT_SRC" ]; } ||
		die "alert file $ALERT_SRC not found; pass one with --alert-file FILE, or install without alerts with --no-alerts"
}

# prepare_binary leaves the plugin to install in $WORK/$PLUGIN_NAME and its
# version in PLUGIN_VERSION. A given binary is copied first, so what is checked
# is what gets installed.
prepare_binary() {
	local out
	if [ -n "$BINARY" ]; then
		{ [ -f "$BINARY" ] && [ -r "$BINARY" ]; } ||
			die "--binary $BINARY is not a readable file; build it with 'make' (or go build -o audit.plugin ./plugin) or fix the path"
		cp "$BINARY" "$WORK/$PLUGIN_NAME"
	else
		command -v go >/dev/null 2>&1 ||
			die "Go is not installed (no 'go' in PATH=$PATH), and it is needed to build audit.plugin; install Go (see go.mod for the version), or pass a prebuilt plugin with --binary PATH"
		build_plugin "$WORK/$PLUGIN_NAME"
	fi
	chmod 0755 "$WORK/$PLUGIN_NAME"
	out=$(timeout 10 "$WORK/$PLUGIN_NAME" -version 2>/dev/null) || out=
	case $out in
	"audit.plugin "*) PLUGIN_VERSION=${out#audit.plugin } ;;
	*) die "${BINARY:-the built binary} is not audit.plugin (its -version printed '${out}'); pass the audit.plugin built from ./plugin with --binary" ;;
	esac
}

build_plugin() {
	local dest=$1 ver flags=()
	# root building a checkout owned by someone else (sudo ./install.sh): let
	# git (ours and the one go build calls for VCS stamping) trust this tree.
	# Config from the environment counts as command-line config, which git
	# accepts for safe.directory.
	export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0="$SRC_DIR"
	ver=$(git -C "$SRC_DIR" describe --always --dirty 2>/dev/null) || ver=
	if [ -z "$ver" ]; then
		ver=dev
		flags+=(-buildvcs=false) # not a git checkout (a tarball): nothing to stamp
	fi
	say "Building audit.plugin $ver from $SRC_DIR with $(command -v go)"
	(cd "$SRC_DIR" && CGO_ENABLED=0 go build "${flags[@]}" -trimpath -ldflags "-X main.version=$ver" -o "$dest" ./plugin) ||
		die "building audit.plugin failed (go build's error is above); fix it, or pass a prebuilt plugin with --binary PATH"
}

# ---------------------------------------------------------------------------
# systemd. A file capability only takes effect within the process's capability
# bounding set, and netdata.service may restrict that set.

# find_unit sets UNIT (host path of the netdata.service systemd would load) or "".
find_unit() {
	UNIT=
	for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
		if [ -f "$(h "$d/netdata.service")" ]; then
			UNIT=$(h "$d/netdata.service")
			return 0
		fi
	done
}

# unit_dropins prints the host paths of netdata.service's drop-ins other than
# ours, in the order systemd applies them: sorted by file name, a name in /etc
# hiding the same name in /run and /usr/lib.
unit_dropins() {
	local d dir f
	for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
		dir=$(h "$d/netdata.service.d")
		[ -d "$dir" ] || continue
		for f in "$dir"/*.conf; do
			[ -f "$f" ] || continue
			[ "${f##*/}" = "$DROPIN_NAME" ] && continue
			printf '%s\t%s\n' "${f##*/}" "$f"
		done
	done | awk -F '\t' '!seen[$1]++' | sort -t "$TAB" -k1,1 | cut -f2
}

# unit_has_audit_cap FILES... prints yes if CAP_AUDIT_CONTROL ends up in the
# bounding set after systemd reads FILES in order, else no. systemd's rules
# (config_parse_capability_set): unset means every capability; "" empties the
# set and "~" fills it; the first list replaces the default; later lists are
# OR-ed in, and "~" lists remove their capabilities.
unit_has_audit_cap() {
	awk '
	BEGIN { explicit = 0; has = 1 }
	FNR == 1 { section = "" }
	/^[ \t]*[#;]/ { next }
	/^[ \t]*\[/ { section = $0; gsub(/[][ \t]/, "", section); next }
	section == "Service" && /^[ \t]*CapabilityBoundingSet[ \t]*=/ {
		v = $0; sub(/^[^=]*=[ \t]*/, "", v)
		inv = 0; if (substr(v, 1, 1) == "~") { inv = 1; v = substr(v, 2) }
		n = split(v, caps, /[ \t]+/); any = 0; found = 0
		for (i = 1; i <= n; i++) {
			if (caps[i] == "") continue
			any = 1; c = toupper(caps[i])
			if (c == "CAP_AUDIT_CONTROL" || c == "30") found = 1
		}
		if (!any) has = inv
		else if (!explicit) has = inv ? !found : found
		else if (inv && found) has = 0
		else if (!inv && found) has = 1
		explicit = 1
	}
	END { print (has ? "yes" : "no") }
	' "$@"
}

# unit_no_new_privs FILES... prints yes if NoNewPrivileges is on: then the
# kernel ignores file capabilities and no drop-in of ours can help.
unit_no_new_privs() {
	awk '
	FNR == 1 { section = "" }
	/^[ \t]*\[/ { section = $0; gsub(/[][ \t]/, "", section); next }
	section == "Service" && /^[ \t]*NoNewPrivileges[ \t]*=/ {
		v = tolower($0); sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
		on = (v == "yes" || v == "true" || v == "1" || v == "on")
	}
	END { print (on ? "yes" : "no") }
	' "$@"
}

systemd_running() { [ -z "$RP" ] && [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------------------
# Netdata's own audit collector (2.11+, in debugfs.plugin, charts audit.*).

NETDATA_VERSION=
netdata_version() {
	[ -n "$NETDATA_BIN_T" ] || return 0
	v=$(timeout 10 "$(h "$NETDATA_BIN_T")" -v 2>/dev/null | head -n 1) || v=
	NETDATA_VERSION=$(printf '%s\n' "$v" | sed -n 's/^[^0-9]*\([0-9][0-9]*\.[0-9][0-9]*\(\.[0-9][0-9]*\)\{0,1\}\).*/\1/p' | head -n 1)
	return 0
}

version_at_least_2_11() {
	[ -n "$NETDATA_VERSION" ] || return 1
	major=${NETDATA_VERSION%%.*}
	rest=${NETDATA_VERSION#*.}
	minor=${rest%%.*}
	[ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 11 ]; }
}

# builtin_audit prints why we think this Netdata has its own audit module, or
# nothing.
builtin_audit() {
	if version_at_least_2_11; then
		printf 'Netdata v%s' "$NETDATA_VERSION"
	elif [ -n "$HEALTH_DIR_T" ] && [ -f "$(h "$HEALTH_DIR_T")/audit.conf" ]; then
		printf 'its stock %s/audit.conf' "$HEALTH_DIR_T"
	elif [ -f "$(h "$PLUGINS_DIR_T")/debugfs.plugin" ] &&
		LC_ALL=C grep -aqE 'audit\.backlog_utilization|audit_backlog_utilization' "$(h "$PLUGINS_DIR_T")/debugfs.plugin"; then
		printf 'its debugfs.plugin with audit support'
	fi
}

explain_coexistence() {
	why=$(builtin_audit)
	if [ -z "$why" ]; then
		say "Netdata ${NETDATA_VERSION:+v$NETDATA_VERSION }has no audit collector of its own (Netdata 2.11+ adds one); audit.plugin is the only one."
		return 0
	fi
	names=(none)
	if [ "$NO_ALERTS" = 0 ]; then
		# shellcheck disable=SC2207 # alert names have no spaces
		names=($(awk '/^[ \t]*(alarm|template)[ \t]*:/ { sub(/^[^:]*:[ \t]*/, ""); print $1 }' "$ALERT_SRC"))
	fi
	cat <<EOF
Netdata 2.11+ detected ($why): it has its own audit module in debugfs.plugin,
  charting audit.* (audit.backlog, audit.backlog_utilization, audit.lost, ...)
  with the stock alerts audit_backlog_utilization and audit_lost_events
  (health.d/audit.conf). audit.plugin charts linux_audit.* with its own alerts
  (health.d/$ALERT_NAME: ${names[*]:-none}), so chart ids,
  alert names and files do not clash: both can run side by side.
  To run only Netdata's module, uninstall this plugin ($PROG --uninstall)
  or set '[plugins] audit = no' in netdata.conf.
  Both notify the same lost records (audit_lost_events, linux_audit_lost_records).
  To silence one alert, exclude it in netdata.conf and restart Netdata:
    [health]
        enabled alarms = !audit_lost_events *
  (or !linux_audit_lost_records; put the exclusion before the last pattern of
  an existing 'enabled alarms' line). See README.md, "Netdata 2.x".
EOF
}

# ---------------------------------------------------------------------------
# The manifest: one line per thing this script created,
#   file<TAB>SHA256<TAB>PATH   removed on uninstall if its content is unchanged
#   dir<TAB>-<TAB>PATH         a directory it created, removed if empty
# with PATH as the target system sees it (without --root). Lines starting with
# # are comments. The manifest's own directory is implied.

manifest_entry() { # KIND PATH: prints the manifest line for PATH, if any
	[ -f "$(h "$MANIFEST_T")" ] || return 0
	K=$1 P=$2 awk -F '\t' '$1 == ENVIRON["K"] && $3 == ENVIRON["P"]' "$(h "$MANIFEST_T")"
}

sha() { sha256sum "$1" | cut -d ' ' -f 1; }

# ---------------------------------------------------------------------------
# Installing one file: compare first, write only when something differs.

# file_matches SRC DEST OWNER:GROUP MODE WANT_CAP: true if DEST is a regular
# file with SRC's content, that owner and mode, and (WANT_CAP=1) exactly the
# file capability cap_audit_control+ep (WANT_CAP=0: none).
file_matches() {
	local caps
	[ -f "$2" ] && [ ! -L "$2" ] || return 1
	cmp -s "$1" "$2" || return 1
	[ "$(stat -c '%U:%G %a' "$2")" = "$3 $4" ] || return 1
	caps=$(getcap "$2" 2>/dev/null | sed 's/^.*[[:space:]]//')
	if [ "$5" = 1 ]; then
		case $caps in cap_audit_control=ep | cap_audit_control+ep) return 0 ;; esac
		return 1
	fi
	[ -z "$caps" ]
}

CHANGED=0      # 1 once anything was (or, dry run, would be) changed
LAST_CHANGED=0 # whether the last place_file changed its file
NEW_MANIFEST=  # file collecting this run's manifest lines

# place_file SRC DEST_T OWNER GROUP MODE WANT_CAP DETAILS
place_file() {
	local src=$1 dest owner=$3 group=$4 mode=$5 want_cap=$6 details=$7 action tmp
	dest=$(h "$2")
	printf 'file\t%s\t%s\n' "$(sha "$src")" "$2" >>"$NEW_MANIFEST"
	LAST_CHANGED=0
	if file_matches "$src" "$dest" "$owner:$group" "${mode#0}" "$want_cap"; then
		report unchanged "$dest"
		return 0
	fi
	if [ -e "$dest" ] || [ -L "$dest" ]; then action=updated; else action=installed; fi
	CHANGED=1
	LAST_CHANGED=1
	if [ "$DRY_RUN" = 1 ]; then
		report "would be $action" "$dest ($details)"
		return 0
	fi
	# Write a temporary file beside DEST and rename it: Netdata never sees a
	# half-written plugin or alert file. The temporary name starts with a dot
	# and does not end in .plugin or .conf, so Netdata ignores it. chown clears
	# file capabilities, so setcap comes after install(1).
	tmp=$(dirname "$dest")/.${dest##*/}.new
	TMP_FILES+=("$tmp")
	install -o "$owner" -g "$group" -m "$mode" "$src" "$tmp"
	[ "$want_cap" = 1 ] && setcap cap_audit_control+ep "$tmp"
	mv -f "$tmp" "$dest"
	report "$action" "$dest ($details)"
}

# remove_entry KIND SHA PATH_T: removes one manifest entry if still ours.
REMOVED_DROPIN=0
remove_entry() {
	local kind=$1 sum=$2 p
	p=$(h "$3")
	case $kind in
	file)
		if [ ! -e "$p" ] && [ ! -L "$p" ]; then
			report "already gone" "$p"
			return 0
		fi
		if [ ! -f "$p" ] || [ "$(sha "$p")" != "$sum" ]; then
			warn "kept $p: it changed since it was installed, so it is no longer what this script installed; remove it by hand if you do not need it"
			return 0
		fi
		case $3 in */netdata.service.d/*) REMOVED_DROPIN=1 ;; esac
		CHANGED=1
		if [ "$DRY_RUN" = 1 ]; then
			report "would be removed" "$p"
		else
			rm -f "$p"
			report removed "$p"
		fi
		;;
	dir)
		[ -d "$p" ] || return 0
		if [ "$DRY_RUN" = 1 ]; then
			report "would be removed" "$p/ (if empty)"
		elif rmdir "$p" 2>/dev/null; then
			report removed "$p/"
		else
			report kept "$p/ (not empty: it holds files this script did not create)"
		fi
		;;
	esac
}

# ---------------------------------------------------------------------------

do_install() {
	require_libcap_tools
	find_netdata
	require_group
	require_alert_file
	prepare_binary
	netdata_version

	plugin_t=$PLUGINS_DIR_T/$PLUGIN_NAME
	alert_t=
	[ "$NO_ALERTS" = 1 ] || alert_t=$HEALTH_DIR_T/$ALERT_NAME

	# Does netdata.service need our drop-in?
	find_unit
	dropin_dir_t=/etc/systemd/system/netdata.service.d
	dropin_t=
	unit_note=
	if [ "$NO_SYSTEMD" = 1 ]; then
		unit_note="--no-systemd: no systemd drop-in"
	elif [ -z "$UNIT" ]; then
		unit_note="no netdata.service found: Netdata is not run by systemd here, no drop-in needed"
	else
		files=("$UNIT")
		while IFS= read -r f; do files+=("$f"); done < <(unit_dropins)
		if [ "$(unit_has_audit_cap "${files[@]}")" = yes ]; then
			unit_note="$UNIT lets Netdata keep CAP_AUDIT_CONTROL: no drop-in needed"
		else
			dropin_t=$dropin_dir_t/$DROPIN_NAME
			unit_note="$UNIT's CapabilityBoundingSet lacks CAP_AUDIT_CONTROL, which would mask the file capability: it needs the drop-in below"
		fi
		[ "$(unit_no_new_privs "${files[@]}")" = yes ] &&
			warn "netdata.service sets NoNewPrivileges=yes: the kernel then ignores file capabilities and audit.plugin will not get CAP_AUDIT_CONTROL; override it with NoNewPrivileges=no in a drop-in"
	fi

	# Refuse before changing anything if a file we would write exists and is
	# not ours (a Netdata package, or the admin, put it there).
	for p in "$plugin_t" "$alert_t" "$dropin_t"; do
		[ -n "$p" ] || continue
		if { [ -e "$(h "$p")" ] || [ -L "$(h "$p")" ]; } && [ -z "$(manifest_entry file "$p")" ]; then
			die "$(h "$p") already exists and was not installed by this script (it is not in $(h "$MANIFEST_T")); not overwriting it. Remove or rename it if it is an old copy of audit.plugin, then run $PROG again"
		fi
	done

	say "Installing audit.plugin $PLUGIN_VERSION into $LAYOUT: $(h "$PLUGINS_DIR_T")"
	[ "$DRY_RUN" = 1 ] && say "(dry run: nothing is changed)"

	NEW_MANIFEST=$WORK/manifest
	{
		printf '# audit.plugin install manifest, written by install.sh and read by install.sh --uninstall.\n'
		printf '# KIND<TAB>SHA256<TAB>PATH: file = removed if its SHA256 still matches; dir = created by install.sh, removed if empty.\n'
	} >"$NEW_MANIFEST"

	place_file "$WORK/$PLUGIN_NAME" "$plugin_t" root "$GROUP" 0750 1 \
		"root:$GROUP 0750, cap_audit_control+ep"

	if [ -n "$alert_t" ]; then
		place_file "$ALERT_SRC" "$alert_t" root root 0644 0 "root:root 0644"
	fi

	say "systemd: $unit_note"
	dropin_changed=0
	if [ -n "$dropin_t" ]; then
		dir=$(h "$dropin_dir_t")
		# The drop-in directory is ours to remove later only if we create it
		# (or created it on an earlier run).
		if [ ! -d "$dir" ] || [ -n "$(manifest_entry dir "$dropin_dir_t")" ]; then
			printf 'dir\t-\t%s\n' "$dropin_dir_t" >>"$NEW_MANIFEST"
		fi
		if [ ! -d "$dir" ]; then
			CHANGED=1
			dropin_changed=1
			if [ "$DRY_RUN" = 1 ]; then report "would be created" "$dir/"; else
				install -d -o root -g root -m 0755 "$dir"
				report created "$dir/"
			fi
		fi
		cat >"$WORK/$DROPIN_NAME" <<'EOF'
# Installed by audit.plugin's install.sh (removed by install.sh --uninstall).
# audit.plugin reads the kernel audit status with the file capability
# CAP_AUDIT_CONTROL, which works only inside the bounding set below.
# A second CapabilityBoundingSet= line adds to the set the unit already has.
[Service]
CapabilityBoundingSet=CAP_AUDIT_CONTROL
EOF
		place_file "$WORK/$DROPIN_NAME" "$dropin_t" root root 0644 0 "root:root 0644"
		[ "$LAST_CHANGED" = 1 ] && dropin_changed=1
	fi

	# Whatever an earlier run installed and this one does not (another
	# Netdata location, a drop-in no longer needed) is removed now.
	if [ -f "$(h "$MANIFEST_T")" ]; then
		stale=$(awk -F '\t' 'NR == FNR { if ($0 !~ /^#/) keep[$1 FS $3] = 1; next }
			!/^#/ && !(($1 FS $3) in keep)' "$NEW_MANIFEST" "$(h "$MANIFEST_T")")
		if [ -n "$stale" ]; then
			before_removed=$REMOVED_DROPIN
			printf '%s\n' "$stale" | awk -F '\t' '$1 == "file"' >"$WORK/stale"
			printf '%s\n' "$stale" | awk -F '\t' '$1 == "dir"' | sort -r >>"$WORK/stale"
			while IFS="$TAB" read -r kind sum p; do
				remove_entry "$kind" "$sum" "$p"
			done <"$WORK/stale"
			[ "$REMOVED_DROPIN" != "$before_removed" ] && dropin_changed=1
		fi
	fi

	write_manifest

	say ""
	explain_coexistence
	user_alert=$(h "$CONFIG_DIR_T")/health.d/$ALERT_NAME
	if [ -n "$alert_t" ] && [ -f "$user_alert" ]; then
		say "Note: your copy $user_alert replaces the installed alerts; compare it with $(h "$alert_t")."
	fi
	if [ -f "$(h "$CONFIG_DIR_T")/health.d/audit.conf" ] && [ -n "$(builtin_audit)" ]; then
		warn "$(h "$CONFIG_DIR_T")/health.d/audit.conf replaces Netdata's stock audit alerts (same name); rename it if it is not meant to"
	fi

	say ""
	if [ "$CHANGED" = 0 ]; then
		say "Nothing to do: audit.plugin is already installed (everything unchanged)."
		check_running_netdata
		return 0
	fi
	if [ "$DRY_RUN" = 1 ]; then
		say "Dry run: nothing was changed. Run without --dry-run to do the above."
		return 0
	fi
	if [ "$dropin_changed" = 1 ]; then
		restart_needed
	else
		say "Netdata starts a new plugin within a minute; restart Netdata to load the alerts and to run an updated plugin:"
		say "  systemctl restart netdata   (or: netdatacli reload-health, for the alerts alone)"
		check_running_netdata
	fi
	[ -n "$alert_t" ] && say "Customise the alerts with: $(h "$CONFIG_DIR_T")/edit-config health.d/$ALERT_NAME"
	say "Remove everything again with: $0 --uninstall${RP:+ --root $RP}"
}

write_manifest() {
	local m
	m=$(h "$MANIFEST_T")
	if [ -f "$m" ] && cmp -s "$NEW_MANIFEST" "$m"; then
		return 0
	fi
	CHANGED=1
	if [ "$DRY_RUN" = 1 ]; then
		report "would be written" "$m"
		return 0
	fi
	install -d -o root -g root -m 0755 "$(h "$MANIFEST_DIR_T")"
	TMP_FILES+=("$m.new")
	install -o root -g root -m 0644 "$NEW_MANIFEST" "$m.new"
	mv -f "$m.new" "$m"
	report written "$m"
}

restart_needed() {
	if systemd_running; then
		systemctl daemon-reload
		say "Ran systemctl daemon-reload. RESTART NEEDED for netdata.service's new capability bounding set:"
		say "  systemctl restart netdata"
	else
		say "RESTART NEEDED: netdata.service's capability bounding set changed; when systemd runs this system:"
		say "  systemctl daemon-reload && systemctl restart netdata"
	fi
}

# check_running_netdata: a Netdata started before the drop-in still has the
# old bounding set, whatever the files now say.
check_running_netdata() {
	local pid bnd
	[ -z "$RP" ] || return 0
	command -v pidof >/dev/null 2>&1 || return 0
	for pid in $(pidof netdata 2>/dev/null); do
		bnd=$(awk '/^CapBnd:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
		[ -n "$bnd" ] || continue
		if [ $(((0x$bnd >> 30) & 1)) = 0 ]; then
			say "RESTART NEEDED: the running Netdata (pid $pid) lacks CAP_AUDIT_CONTROL in its bounding set, so audit.plugin cannot read the audit status:"
			say "  systemctl daemon-reload && systemctl restart netdata"
			return 0
		fi
	done
}

do_uninstall() {
	local m kind sum p
	m=$(h "$MANIFEST_T")
	if [ ! -f "$m" ]; then
		say "Nothing to uninstall: no manifest at $m (audit.plugin was not installed by $PROG${RP:+ under $RP})."
		return 0
	fi
	[ "$DRY_RUN" = 1 ] && say "(dry run: nothing is changed)"
	say "Removing what $m lists:"
	# Files first, then directories deepest first.
	{
		awk -F '\t' '!/^#/ && $1 == "file"' "$m"
		awk -F '\t' '!/^#/ && $1 == "dir"' "$m" | sort -r
	} >"$WORK/entries"
	while IFS="$TAB" read -r kind sum p; do
		case $kind in file | dir) remove_entry "$kind" "$sum" "$p" ;; *) warn "ignored manifest line: $kind $sum $p" ;; esac
	done <"$WORK/entries"
	if [ "$DRY_RUN" = 1 ]; then
		report "would be removed" "$m"
		report "would be removed" "$(h "$MANIFEST_DIR_T")/ (if empty)"
		say ""
		say "Dry run: nothing was changed."
		return 0
	fi
	rm -f "$m"
	report removed "$m"
	rmdir "$(h "$MANIFEST_DIR_T")" 2>/dev/null && report removed "$(h "$MANIFEST_DIR_T")/"
	say ""
	say "audit.plugin is uninstalled."
	if [ "$REMOVED_DROPIN" = 1 ]; then
		restart_needed
	else
		say "Restart Netdata to stop a running audit.plugin and unload its alerts: systemctl restart netdata"
	fi
}

# ---------------------------------------------------------------------------

ARGS=$*
parse_args "$@"
require_root
setup_root

WORK=$(mktemp -d "${TMPDIR:-/tmp}/audit-plugin-install.XXXXXX")
TMP_FILES=()
cleanup() {
	for f in "${TMP_FILES[@]}"; do rm -f "$f"; done
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$UNINSTALL" = 1 ]; then
	do_uninstall
else
	do_install
fi
