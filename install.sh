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
#   /etc/systemd/system/netdata.service.d/zz-audit-plugin.conf
#                                   only where netdata.service's capability
#                                   bounding set lacks CAP_AUDIT_CONTROL (it
#                                   would mask the file capability); named to
#                                   apply after every usual drop-in.
# Everything it creates is listed in a manifest, so --uninstall removes exactly
# that, and a second run compares before writing and changes nothing.
#
# Run ./install.sh --help for the options.

set -eu
# stat's file types, sort's and [[ ]]'s order (systemd sorts drop-ins with
# strcmp), and the tools' messages, the same whatever the caller's locale.
export LC_ALL=C

PROG=${0##*/}
SRC_DIR=$(cd "$(dirname "$0")" && pwd)

PLUGIN_NAME=audit.plugin
ALERT_NAME=linux_audit.conf
# systemd applies drop-ins in the order of their file names, whatever their
# directory; "zz-" sorts after override.conf (systemctl edit) and the usual
# NN- prefixes, so that an earlier CapabilityBoundingSet= cannot undo ours.
DROPIN_NAME=zz-audit-plugin.conf
OLD_DROPIN_NAMES=audit-plugin.conf # earlier versions' names, migrated
MANIFEST_DIR_T=/var/lib/netdata-audit-plugin # "_T": a path on the target system
MANIFEST_T=$MANIFEST_DIR_T/manifest
DROPIN_DIR_T=/etc/systemd/system/netdata.service.d
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
                      and images); every other path is inside DIR, its
                      symlinks resolve inside it, and nothing in it is run
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
# h PATH_T: the host path, for messages. Files are reached through resolve.
h() { printf '%s%s' "$RP" "$1"; }

# ---------------------------------------------------------------------------
# Resolving target paths. resolve walks a path one component at a time, as
# the kernel does, but confined to --root as if chrooted there: an absolute
# symlink starts again at the root and ".." stops at it, so nothing outside
# the root is read, written or removed.
#
# With --check it also refuses, in one line naming the fix, a directory on
# the way that root does not own or that anyone else can write (the group
# and other write bits; with an ACL the group bits are its mask, so they
# cover every named entry too). Whoever can write a directory on the way can
# swap in their own file, or their own directory, between our write and our
# setcap, and so get a file capability on their file. A world-writable sticky
# directory (/tmp) may be on the way when the entry we pass through is
# root's: the sticky bit stops others renaming or removing it.

RESOLVED=
ROOT_CHECKED=0
# Resolutions already made, by "CHECK PATH_T": the paths do not change under
# us (only root can change the checked ones, and this script only adds to
# them), and the installs of the race tests run hundreds of times.
declare -A RESOLVE_CACHE=()

# dir_ok DIR UID MODE NEXT_UID: DIR (owned by UID, octal MODE) is safe to pass
# through to an entry owned by NEXT_UID ("" when DIR is where we write).
dir_ok() {
	local bad=
	if [ "$2" != 0 ]; then
		bad="is owned by uid $2 ($(id -nu "$2" 2>/dev/null || echo unknown)), not root"
	elif [ $((8#$3 & 8#022)) != 0 ]; then
		[ -n "$4" ] && [ "$4" = 0 ] && [ $((8#$3 & 8#1000)) != 0 ] && return 0
		bad="is writable by users other than root (mode $3)"
	fi
	[ -z "$bad" ] && return 0
	die "refusing to install: $1 $bad, so another user could swap in their own file before it gets CAP_AUDIT_CONTROL; fix: chown root $1 && chmod go-w $1 (or install elsewhere with --plugins-dir/--health-dir)"
}

# resolve [--check] PATH_T: sets RESOLVED to the host path of PATH_T. Parts
# that do not exist (yet) are appended as they are.
resolve() {
	local check=0
	if [ "$1" = --check ]; then
		check=1
		shift
	fi
	if [ -n "${RESOLVE_CACHE["$check $1"]+set}" ]; then
		RESOLVED=${RESOLVE_CACHE["$check $1"]}
		return 0
	fi
	resolve_uncached "$check" "$1"
	RESOLVE_CACHE["$check $1"]=$RESOLVED
}

resolve_uncached() {
	local check=$1 top path cur comp next i n
	local -a comps=() paths=() infos=()
	shift
	top=${RP:-/}
	if [ "$check" = 1 ] && [ "$ROOT_CHECKED" = 0 ] && [ -n "$RP" ]; then
		ROOT_CHECKED=1 # the root and the directories above it (pwd -P: no symlinks)
		RP= resolve_uncached 1 "$top"
	fi
	# The common case in one stat(1) call: no symlink on the way.
	path=/${1#/}
	case $path/ in */./* | */../* | *//*) ;; *)
		cur=${top%/}
		IFS=/ read -r -a comps <<<"${path#/}"
		for comp in "${comps[@]}"; do
			cur=$cur/$comp
			paths+=("$cur")
		done
		mapfile -t infos < <(stat -c '%u %a %F' -- "$top" "${paths[@]}" 2>/dev/null)
		case "${infos[*]}" in *"symbolic link"*) ;; *)
			n=$((${#infos[@]} - 1)) # the number of paths that exist
			for ((i = 0; i < ${#infos[@]}; i++)); do
				cur=$top
				[ "$i" = 0 ] || cur=${paths[i - 1]}
				case ${infos[i]} in *" directory") ;; *)
					# Not a directory: the rest is looked up no further.
					RESOLVED=$cur${paths[-1]#"$cur"}
					return 0
					;;
				esac
				if [ "$check" = 1 ]; then
					set -- ${infos[i]}
					next=
					[ "$i" -lt "$n" ] && next=${infos[i + 1]%% *}
					dir_ok "$cur" "$1" "$2" "$next"
				fi
			done
			RESOLVED=$top
			[ ${#paths[@]} = 0 ] || RESOLVED=${paths[-1]}
			return 0
			;;
		esac
		;;
	esac
	resolve_walk "$check" "$1"
}

# resolve_walk CHECK PATH_T: resolve, one component at a time.
resolve_walk() {
	local check=$1 top cur rest comp next info curinfo links=0 tgt
	top=${RP:-/}
	cur=$top
	curinfo=$(stat -c '%u %a' -- "$cur")
	rest=${2#/}
	while [ -n "$rest" ]; do
		case $rest in
		*/*)
			comp=${rest%%/*}
			rest=${rest#*/}
			;;
		*)
			comp=$rest
			rest=
			;;
		esac
		case $comp in
		"" | .) continue ;;
		..)
			if [ "$cur" != "$top" ]; then
				cur=${cur%/*}
				[ -n "$cur" ] || cur=/
				curinfo=$(stat -c '%u %a' -- "$cur")
			fi
			continue
			;;
		esac
		next=${cur%/}/$comp
		if ! info=$(stat -c '%u %a %F' -- "$next" 2>/dev/null); then
			case /$rest/ in */../*) die "cannot resolve $2: $next does not exist" ;; esac
			[ "$check" = 1 ] && dir_ok "$cur" $curinfo ""
			RESOLVED=$next${rest:+/$rest}
			return 0
		fi
		[ "$check" = 1 ] && dir_ok "$cur" $curinfo "${info%% *}"
		case $info in
		*" symbolic link")
			links=$((links + 1))
			[ "$links" -le 40 ] || die "cannot resolve $2: too many symlinks"
			tgt=$(readlink -- "$next")
			case $tgt in /*)
				cur=$top
				curinfo=$(stat -c '%u %a' -- "$cur")
				;;
			esac
			rest=${tgt#/}${rest:+/$rest}
			;;
		*" directory")
			cur=$next
			curinfo=${info% directory}
			;;
		*)
			RESOLVED=$next${rest:+/$rest}
			return 0
			;;
		esac
	done
	[ "$check" = 1 ] && dir_ok "$cur" $curinfo ""
	RESOLVED=$cur
}

# rp PATH_T: prints the host path of PATH_T (no checks; for reading).
rp() {
	resolve "$1"
	printf '%s' "$RESOLVED"
}

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
		[ -d "$(rp "$PLUGINS_DIR_T")" ] ||
			die "Netdata not found: the plugins directory $(h "$PLUGINS_DIR_T") given with --plugins-dir does not exist; install Netdata or pass the directory that holds Netdata's *.plugin files"
		LAYOUT="given with --plugins-dir"
	else
		found=
		for d in /usr/libexec/netdata/plugins.d /usr/lib/netdata/plugins.d /opt/netdata/usr/libexec/netdata/plugins.d; do
			[ -d "$(rp "$d")" ] && found="$found${found:+ }$d"
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

	[ "$NO_ALERTS" = 1 ] && return 0
	if [ -z "$HEALTH_DIR_T" ]; then
		[ -n "$stock" ] ||
			die "cannot tell Netdata's stock health directory for the plugins directory $PLUGINS_DIR_T; pass it with --health-dir DIR (or --no-alerts)"
		HEALTH_DIR_T=$stock/health.d
	fi
	[ -d "$(rp "$HEALTH_DIR_T")" ] ||
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

# build_plugin DEST builds ./plugin from this tree. This runs as root in a
# checkout that may be someone else's, so nothing the checkout configures is
# run: no git at all (git would run the checkout's core.fsmonitor, hooks,
# aliases, textconv, includes... as root; tree_version reads .git itself);
# -buildvcs=false (else go build runs git status for the VCS stamp);
# GOTOOLCHAIN=local (a toolchain line in go.mod cannot make root download and
# run another Go); GOWORK=off (a go.work above the checkout cannot swap in
# other modules); GOFLAGS= and CGO_ENABLED=0 (no C compiler, no #cgo flags).
# The Go sources themselves are what gets installed, so they are trusted.
build_plugin() {
	local dest=$1 ver
	ver=$(tree_version)
	say "Building audit.plugin $ver from $SRC_DIR with $(command -v go)"
	(cd "$SRC_DIR" && CGO_ENABLED=0 GOFLAGS= GOWORK=off GOTOOLCHAIN=local \
		go build -buildvcs=false -trimpath -ldflags "-X main.version=$ver" -o "$dest" ./plugin) ||
		die "building audit.plugin failed (go build's error is above); fix it, or pass a prebuilt plugin with --binary PATH"
}

# read_git_file FILE prints FILE's first line if it is a regular file (not a
# symlink: the checkout's owner could point it anywhere).
read_git_file() {
	[ -f "$1" ] && [ ! -L "$1" ] || return 1
	head -c 4096 -- "$1" | head -n 1
}

# tree_version prints the source tree's version from .git, read as files:
# the tag on HEAD (from packed-refs, peeled, or a lightweight loose tag),
# else HEAD's commit (12 hex digits), else "dev" (not a git checkout, or one
# it cannot read). Worktrees (.git a file) are followed to their common dir.
tree_version() {
	local gitdir common c head ref hash i tag=
	if [ -d "$SRC_DIR/.git" ] && [ ! -L "$SRC_DIR/.git" ]; then
		gitdir=$SRC_DIR/.git
	else
		gitdir=$(read_git_file "$SRC_DIR/.git") || gitdir=
		gitdir=${gitdir#gitdir: }
		case $gitdir in
		"") echo dev && return 0 ;;
		/*) ;;
		*) gitdir=$SRC_DIR/$gitdir ;;
		esac
	fi
	common=$gitdir
	if c=$(read_git_file "$gitdir/commondir"); then
		case $c in /*) common=$c ;; *) common=$gitdir/$c ;; esac
	fi
	head=$(read_git_file "$gitdir/HEAD") || head=
	for i in 1 2 3 4 5; do
		case $head in "ref: refs/"*) ;; *) break ;; esac
		ref=${head#ref: }
		case $ref in *..* | *[!A-Za-z0-9._/-]*) head= && break ;; esac
		head=$(read_git_file "$gitdir/$ref") || head=$(read_git_file "$common/$ref") ||
			head=$(awk -v r="$ref" '$2 == r { print $1; exit }' "$common/packed-refs" 2>/dev/null) || head=
	done
	hash=$head
	case ${#hash} in 40 | 64) ;; *) hash= ;; esac
	case $hash in *[!0-9a-f]*) hash= ;; esac
	[ -n "$hash" ] || { echo dev && return 0; }
	if [ -f "$common/packed-refs" ] && [ ! -L "$common/packed-refs" ]; then
		tag=$(awk -v h="$hash" '
			/^\^/ { if (substr($0, 2) == h && last != "") { print last; exit } next }
			{ last = ""; if ($2 ~ /^refs\/tags\//) { last = substr($2, 11); if ($1 == h) { print last; exit } } }
		' "$common/packed-refs")
	fi
	if [ -z "$tag" ] && [ -d "$common/refs/tags" ]; then
		for c in "$common"/refs/tags/*; do
			[ "$(read_git_file "$c")" = "$hash" ] && tag=${c##*/} && break
		done
	fi
	# The version goes into -ldflags: only characters that cannot split it.
	case $tag in "" | *[!A-Za-z0-9._+-]*) echo "${hash:0:12}" ;; *) echo "$tag" ;; esac
}

# ---------------------------------------------------------------------------
# systemd. A file capability only takes effect within the process's capability
# bounding set, and netdata.service may restrict that set.

# systemd's unit search path, highest priority first (systemd.unit(5)), with
# Debian's /lib/systemd/system.
UNIT_PATH="/etc/systemd/system.control /run/systemd/system.control /run/systemd/transient /run/systemd/generator.early /etc/systemd/system /etc/systemd/system.attached /run/systemd/system /run/systemd/system.attached /run/systemd/generator /usr/local/lib/systemd/system /usr/lib/systemd/system /lib/systemd/system /run/systemd/generator.late"

# find_unit sets UNIT (host path of the netdata.service systemd would load) or "".
find_unit() {
	local d
	UNIT=
	for d in $UNIT_PATH; do
		if [ -f "$(rp "$d/netdata.service")" ]; then
			UNIT=$(rp "$d/netdata.service")
			return 0
		fi
	done
}

# unit_dropins prints netdata.service's drop-ins in the order systemd applies
# them, one "NAME<TAB>HOST_PATH<TAB>PATH_T" line each (HOST_PATH "-" for one
# that is masked: empty or /dev/null): every *.conf of netdata.service.d/ and
# of service.d/ (drop-ins for every service) in every directory of the search
# path, sorted by file name alone, a name in a directory of higher priority
# hiding the same name further down.
unit_dropins() {
	local d sub dir f name host
	for d in $UNIT_PATH; do
		for sub in netdata.service.d service.d; do
			dir=$(rp "$d/$sub")
			[ -d "$dir" ] || continue
			for f in "$dir"/*.conf; do
				[ -e "$f" ] || [ -L "$f" ] || continue
				name=${f##*/}
				case $name in *"$TAB"* | *'
'*) continue ;; esac
				host=$(rp "$d/$sub/$name")
				{ [ -f "$host" ] && [ -s "$host" ]; } || host=-
				printf '%s\t%s\t%s\n' "$name" "$host" "$d/$sub/$name"
			done
		done
	done | awk -F '\t' '!seen[$1]++' | sort -t "$TAB" -k1,1
}

# unit_has_audit_cap FILES... prints yes if CAP_AUDIT_CONTROL ends up in the
# bounding set after systemd reads FILES in order, else no. systemd's rules
# (config_parse_capability_set in src/core/load-fragment.c): the set starts
# full; an empty list (after an optional "~") replaces it with nothing, or
# with everything after "~"; a list replaces the set while it is still full,
# and is merged into it otherwise (OR-ed in, or with "~" taken out).
unit_has_audit_cap() {
	awk '
	function clear(a, k) { for (k in a) delete a[k] }
	function size(a, k, n) { n = 0; for (k in a) n++; return n }
	function handle(v,   inv, n, i, c, toks, sum, k, full) {
		inv = 0
		if (substr(v, 1, 1) == "~") { inv = 1; v = substr(v, 2) }
		gsub(/["\047]/, "", v)
		n = split(v, toks, /[ \t]+/)
		clear(sum)
		for (i = 1; i <= n; i++) {
			if (toks[i] == "") continue
			c = toupper(toks[i]); if (c == "30") c = "CAP_AUDIT_CONTROL"
			sum[c] = 1
		}
		# The set is kept as "everything but E" (neg) or "only S".
		full = neg && size(E) == 0
		if (size(sum) == 0 || full) {
			clear(E); clear(S)
			neg = inv
			for (k in sum) { if (inv) E[k] = 1; else S[k] = 1 }
		} else if (inv) {
			for (k in sum) { if (neg) E[k] = 1; else delete S[k] }
		} else {
			for (k in sum) { if (neg) delete E[k]; else S[k] = 1 }
		}
	}
	BEGIN { neg = 1 }
	FNR == 1 { section = ""; cont = "" }
	{
		line = $0
		if (cont != "") { line = cont " " line; cont = "" }
		if (line ~ /\\$/) { cont = substr(line, 1, length(line) - 1); next }
	}
	line ~ /^[ \t]*[#;]/ { next }
	line ~ /^[ \t]*\[/ { section = line; gsub(/[][ \t]/, "", section); next }
	section == "Service" && line ~ /^[ \t]*CapabilityBoundingSet[ \t]*=/ {
		v = line; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
		handle(v)
	}
	END { print ((neg ? !("CAP_AUDIT_CONTROL" in E) : ("CAP_AUDIT_CONTROL" in S)) ? "yes" : "no") }
	' "$@"
}

# write_dropin FILE writes our drop-in.
write_dropin() {
	cat >"$1" <<'EOF'
# Installed by audit.plugin's install.sh (removed by install.sh --uninstall).
# audit.plugin reads the kernel audit status with the file capability
# CAP_AUDIT_CONTROL, which works only inside the bounding set below.
# A second CapabilityBoundingSet= line adds to the set the unit already has;
# this file's name sorts after the usual drop-ins (override.conf, NN-*.conf),
# and systemd applies drop-ins in the order of their names.
[Service]
CapabilityBoundingSet=CAP_AUDIT_CONTROL
EOF
}

# dropin_rank PATH_T: the position of PATH_T's directory in UNIT_PATH.
dropin_rank() {
	local d i=0
	for d in $UNIT_PATH; do
		case $1 in "$d"/*) break ;; esac
		i=$((i + 1))
	done
	echo "$i"
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

# netdata_version sets NETDATA_VERSION (x.y or x.y.z) from the package
# database, for the packaged layouts, or leaves it empty. Nothing from the
# target is run: a netdata binary there may be anyone's (--root, an image, a
# static install owned by netdata), and this script runs as root.
NETDATA_VERSION=
netdata_version() {
	local status
	case $PLUGINS_DIR_T in /usr/lib/netdata/plugins.d | /usr/libexec/netdata/plugins.d) ;; *) return 0 ;; esac
	status=$(rp /var/lib/dpkg/status)
	[ -f "$status" ] || return 0
	NETDATA_VERSION=$(awk '
		function done_stanza() {
			if (pkg == "netdata" && st ~ / installed$/ && !printed) { print ver; printed = 1 }
			pkg = st = ver = ""
		}
		/^$/ { done_stanza(); next }
		/^Package:/ { pkg = $2 }
		/^Status:/ { st = $0 }
		/^Version:/ { ver = $2 }
		END { done_stanza() }' "$status" |
		sed -n 's/^\([0-9]*:\)\{0,1\}\([0-9][0-9]*\.[0-9][0-9]*\(\.[0-9][0-9]*\)\{0,1\}\).*/\2/p' | head -n 1)
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
	elif [ -n "$HEALTH_DIR_T" ] && [ -f "$(rp "$HEALTH_DIR_T/audit.conf")" ]; then
		printf 'its stock %s/audit.conf' "$HEALTH_DIR_T"
	elif [ -f "$(rp "$PLUGINS_DIR_T/debugfs.plugin")" ] &&
		LC_ALL=C grep -aqE 'audit\.backlog_utilization|audit_backlog_utilization' "$(rp "$PLUGINS_DIR_T/debugfs.plugin")"; then
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

# load_manifest copies the manifest's valid lines to $OLD_MANIFEST (empty if
# there is none); every other use of the manifest reads that copy. A line is
# valid if its path is one install.sh installs to: normalised (absolute, no
# "//", "." or ".." component, no trailing "/"), a plugin named audit.plugin,
# alerts named linux_audit.conf, or our drop-in and its directory. Anything
# else is ignored with a warning, and its file kept.
OLD_MANIFEST=
load_manifest() {
	local m info
	OLD_MANIFEST=$WORK/manifest.old
	: >"$OLD_MANIFEST"
	resolve --check "$MANIFEST_DIR_T"
	m=$RESOLVED/${MANIFEST_T##*/}
	{ [ -e "$m" ] || [ -L "$m" ]; } || return 0
	info=$(stat -c '%u %a' -- "$m")
	if [ -L "$m" ] || [ ! -f "$m" ] || [ "${info%% *}" != 0 ] || [ $((8#${info#* } & 8#022)) != 0 ]; then
		die "refusing to use $m: it is not a regular file that only root can write (owner uid, mode: $info), and it lists what install.sh removes; fix: check who changed it, then chown root:root $m && chmod 0644 $m"
	fi
	PROG=$PROG PLUGIN_NAME=$PLUGIN_NAME ALERT_NAME=$ALERT_NAME DROPIN_DIR=$DROPIN_DIR_T DROPINS="$DROPIN_NAME $OLD_DROPIN_NAMES" awk -F '\t' -v out="$OLD_MANIFEST" '
		function ok(kind, sum, p,   base, n, d, i) {
			if (p !~ /^\/[^\t]*[^\/]$/ || p ~ /\/\// || p ~ /\/\.\.?(\/|$)/) return 0
			base = p; sub(/^.*\//, "", base)
			if (kind == "dir") return sum == "-" && p == ENVIRON["DROPIN_DIR"]
			if (kind != "file" || length(sum) != 64 || sum ~ /[^0-9a-f]/) return 0
			if (base == ENVIRON["PLUGIN_NAME"] || base == ENVIRON["ALERT_NAME"]) return 1
			n = split(ENVIRON["DROPINS"], d, " ")
			for (i = 1; i <= n; i++) if (p == ENVIRON["DROPIN_DIR"] "/" d[i]) return 1
			return 0
		}
		/^#/ || /^$/ { next }
		NF == 3 && ok($1, $2, $3) { print > out; next }
		{ printf "%s: warning: ignored line %d of %s: not a path install.sh installs to; its file, if any, is kept: %s\n", ENVIRON["PROG"], FNR, FILENAME, $0 > "/dev/stderr" }
	' "$m"
}

manifest_entry() { # KIND PATH: prints the manifest line for PATH, if any
	K=$1 P=$2 awk -F '\t' '$1 == ENVIRON["K"] && $3 == ENVIRON["P"]' "$OLD_MANIFEST"
}

sha() {
	local out
	out=$(sha256sum -- "$1") || return 1
	printf '%s\n' "${out%% *}"
}

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
	caps=$(getcap "$2" 2>/dev/null) || caps=
	case $caps in *[[:space:]]*) caps=${caps##*[[:space:]]} ;; *) caps= ;; esac
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
	local src=$1 dir name=${2##*/} dest owner=$3 group=$4 mode=$5 want_cap=$6 details=$7 action
	resolve --check "${2%/*}"
	dir=$RESOLVED
	dest=$dir/$name
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
	install_file "$src" "$dir" "$name" "$owner" "$group" "$mode" "$want_cap"
	report "$action" "$dest ($details)"
}

# install_file SRC DIR NAME OWNER GROUP MODE WANT_CAP puts SRC at DIR/NAME,
# DIR having passed resolve --check. The file is prepared, and given its
# capability, in a new directory only root can enter (mktemp -d: 0700, a
# name nobody can predict), inside DIR so that the final rename(2) stays on
# one file system: Netdata never sees a half-written file, and nobody else
# ever holds a name the file passes through. Its name there ends neither in
# .plugin nor in .conf, so Netdata and systemd ignore it. Then the installed
# file is checked (owner, mode, capability, SHA-256); on any mismatch the
# previous file comes back (kept as a hard link) or, if there was none, the
# new one goes, and the install fails.
install_file() {
	local src=$1 dir=$2 name=$3 owner=$4 group=$5 mode=$6 want_cap=$7 dest stage
	dest=$dir/$name
	stage=$(mktemp -d "$dir/.audit-plugin.XXXXXX") || die "cannot create a temporary directory in $dir"
	STAGE_DIRS+=("$stage")
	# chown clears file capabilities, so setcap comes after install(1).
	install -o "$owner" -g "$group" -m "$mode" "$src" "$stage/new"
	if [ "$want_cap" = 1 ]; then
		setcap cap_audit_control+ep "$stage/new" ||
			die "setcap cap_audit_control+ep failed on $dir (a file system without extended attributes?); install into a directory on a file system that supports file capabilities"
	fi
	if [ -f "$dest" ] && [ ! -L "$dest" ]; then
		ln -- "$dest" "$stage/old"
	fi
	mv -fT -- "$stage/new" "$dest"
	if ! file_matches "$src" "$dest" "$owner:$group" "${mode#0}" "$want_cap" ||
		[ "$(sha "$dest")" != "$(sha "$src")" ]; then
		if [ -f "$stage/old" ]; then
			mv -fT -- "$stage/old" "$dest"
		else
			rm -f -- "$dest"
		fi
		rm -rf -- "$stage"
		die "$dest did not come out as installed (owner $owner:$group, mode $mode$([ "$want_cap" = 1 ] && echo ', cap_audit_control+ep'), SHA-256 $(sha "$src")): something changed it; rolled back to what was there before. Find what else writes to $dir, then run $PROG again"
	fi
	rm -rf -- "$stage"
}

# remove_entry KIND SHA PATH_T: removes one manifest entry if still ours.
REMOVED_DROPIN=0
remove_entry() {
	local kind=$1 sum=$2 p
	case $kind in
	file)
		resolve --check "${3%/*}"
		p=$RESOLVED/${3##*/}
		if [ ! -e "$p" ] && [ ! -L "$p" ]; then
			report "already gone" "$p"
			return 0
		fi
		if [ -L "$p" ] || [ ! -f "$p" ] || [ "$(sha "$p")" != "$sum" ]; then
			warn "kept $p: it changed since it was installed, so it is no longer what this script installed; remove it by hand if you do not need it"
			return 0
		fi
		case $3 in */netdata.service.d/*) REMOVED_DROPIN=1 ;; esac
		CHANGED=1
		if [ "$DRY_RUN" = 1 ]; then
			report "would be removed" "$p"
		else
			rm -f -- "$p"
			report removed "$p"
		fi
		;;
	dir)
		resolve --check "$3"
		p=$RESOLVED
		[ -d "$p" ] && [ ! -L "$p" ] || return 0
		if [ "$DRY_RUN" = 1 ]; then
			report "would be removed" "$p/ (if empty)"
		elif rmdir -- "$p" 2>/dev/null; then
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
	# Refuse early, before building, if the directories are not root's alone
	# (checked again with the drop-in's below, before anything is changed).
	plugin_t=$PLUGINS_DIR_T/$PLUGIN_NAME
	alert_t=
	[ "$NO_ALERTS" = 1 ] || alert_t=$HEALTH_DIR_T/$ALERT_NAME
	for p in "$plugin_t" "$alert_t" "$MANIFEST_T"; do
		[ -n "$p" ] && resolve --check "${p%/*}"
	done
	load_manifest
	prepare_binary
	netdata_version

	# Does netdata.service need our drop-in?
	UNIT=
	[ "$NO_SYSTEMD" = 1 ] || find_unit
	dropin_dir_t=$DROPIN_DIR_T
	dropin_t=
	unit_note=
	if [ "$NO_SYSTEMD" = 1 ]; then
		unit_note="--no-systemd: no systemd drop-in"
	elif [ -z "$UNIT" ]; then
		unit_note="no netdata.service found: Netdata is not run by systemd here, no drop-in needed"
	else
		write_dropin "$WORK/$DROPIN_NAME"
		# The unit and its drop-ins in systemd's order, ours (any name an
		# earlier run installed) left out; then with ours in its place.
		files=("$UNIT")
		with=("$UNIT")
		later=()
		ours_t=$dropin_dir_t/$DROPIN_NAME
		placed=0
		hider=
		while IFS="$TAB" read -r name host path_t; do
			[ "$path_t" = "$ours_t" ] && continue
			entry=$(manifest_entry file "$path_t")
			if [ -n "$entry" ] && [ "$host" != - ] && [ "$(sha "$host")" = "$(printf '%s\n' "$entry" | cut -f2)" ]; then
				continue # ours from an earlier run (old name): removed below
			fi
			if [ "$placed" = 0 ] && [[ $name > $DROPIN_NAME || $name == "$DROPIN_NAME" ]]; then
				# A file of the same name in a directory before /etc/systemd/system
				# hides ours; one after it is hidden by ours.
				if [ "$name" = "$DROPIN_NAME" ] && [ "$(dropin_rank "$path_t")" -lt "$(dropin_rank "$ours_t")" ]; then
					placed=2
					hider=$(rp "$path_t")
				fi
				if [ "$placed" = 0 ]; then
					with+=("$WORK/$DROPIN_NAME")
					placed=1
				fi
				[ "$name" = "$DROPIN_NAME" ] && [ "$placed" = 1 ] && continue
			fi
			[ "$host" != - ] || continue
			files+=("$host")
			with+=("$host")
			[ "$placed" = 0 ] || ! grep -qs 'CapabilityBoundingSet' -- "$host" || later+=("$host")
		done < <(unit_dropins)
		[ "$placed" = 0 ] && with+=("$WORK/$DROPIN_NAME")
		if [ "$(unit_has_audit_cap "${files[@]}")" = yes ]; then
			unit_note="$UNIT lets Netdata keep CAP_AUDIT_CONTROL: no drop-in needed"
		else
			dropin_t=$ours_t
			unit_note="$UNIT's CapabilityBoundingSet lacks CAP_AUDIT_CONTROL, which would mask the file capability: it needs the drop-in below"
			if [ -n "$hider" ]; then
				die "netdata.service would still lack CAP_AUDIT_CONTROL: $hider has the drop-in's name, $DROPIN_NAME, in a directory systemd reads first, so it hides $(h "$ours_t"); fix: add CapabilityBoundingSet=CAP_AUDIT_CONTROL to it as its last CapabilityBoundingSet= line, or remove it, then run $PROG again"
			fi
			if [ "$(unit_has_audit_cap "${with[@]}")" != yes ]; then
				die "netdata.service would still lack CAP_AUDIT_CONTROL with the drop-in $(h "$ours_t"): ${later[*]:-a drop-in} applied after it (systemd orders drop-ins by file name) removes it again with CapabilityBoundingSet=; fix: add CAP_AUDIT_CONTROL to that line (or remove the line), then run $PROG again"
			fi
			files=("${with[@]}")
		fi
		[ "$(unit_no_new_privs "${files[@]}")" = yes ] &&
			warn "netdata.service sets NoNewPrivileges=yes: the kernel then ignores file capabilities and audit.plugin will not get CAP_AUDIT_CONTROL; override it with NoNewPrivileges=no in a drop-in"
	fi

	# Refuse before changing anything if a file we would write exists and is
	# not ours (a Netdata package, or the admin, put it there).
	for p in "$plugin_t" "$alert_t" "$dropin_t"; do
		[ -n "$p" ] || continue
		if { [ -e "$(rp "$p")" ] || [ -L "$(rp "$p")" ]; } && [ -z "$(manifest_entry file "$p")" ]; then
			die "$(h "$p") already exists and was not installed by this script (it is not in $(h "$MANIFEST_T")); not overwriting it. Remove or rename it if it is an old copy of audit.plugin, then run $PROG again"
		fi
	done

	# Refuse before changing anything if someone other than root could
	# change a directory we would write to.
	for p in "$plugin_t" "$alert_t" "$dropin_t" "$MANIFEST_T"; do
		[ -n "$p" ] && resolve --check "${p%/*}"
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
		resolve --check "$dropin_dir_t"
		dir=$RESOLVED
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
		place_file "$WORK/$DROPIN_NAME" "$dropin_t" root root 0644 0 "root:root 0644"
		[ "$LAST_CHANGED" = 1 ] && dropin_changed=1
	fi

	# Whatever an earlier run installed and this one does not (another
	# Netdata location, a drop-in no longer needed) is removed now.
	if [ -s "$OLD_MANIFEST" ]; then
		stale=$(awk -F '\t' 'NR == FNR { if ($0 !~ /^#/) keep[$1 FS $3] = 1; next }
			!/^#/ && !(($1 FS $3) in keep)' "$NEW_MANIFEST" "$OLD_MANIFEST")
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
	if [ -n "$alert_t" ] && [ -f "$(rp "$CONFIG_DIR_T/health.d/$ALERT_NAME")" ]; then
		say "Note: your copy $user_alert replaces the installed alerts; compare it with $(h "$alert_t")."
	fi
	if [ -f "$(rp "$CONFIG_DIR_T/health.d/audit.conf")" ] && [ -n "$(builtin_audit)" ]; then
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
	if [ -f "$(rp "$MANIFEST_T")" ] && cmp -s "$NEW_MANIFEST" "$(rp "$MANIFEST_T")"; then
		return 0
	fi
	CHANGED=1
	if [ "$DRY_RUN" = 1 ]; then
		report "would be written" "$m"
		return 0
	fi
	resolve --check "$MANIFEST_DIR_T"
	[ -d "$RESOLVED" ] || install -d -o root -g root -m 0755 "$RESOLVED"
	resolve --check "$MANIFEST_DIR_T"
	install_file "$NEW_MANIFEST" "$RESOLVED" "${MANIFEST_T##*/}" root root 0644 0
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
	load_manifest
	m=$(rp "$MANIFEST_T")
	if [ ! -f "$m" ]; then
		say "Nothing to uninstall: no manifest at $m (audit.plugin was not installed by $PROG${RP:+ under $RP})."
		return 0
	fi
	[ "$DRY_RUN" = 1 ] && say "(dry run: nothing is changed)"
	say "Removing what $m lists:"
	# Files first, then directories deepest first.
	{
		awk -F '\t' '$1 == "file"' "$OLD_MANIFEST"
		awk -F '\t' '$1 == "dir"' "$OLD_MANIFEST" | sort -r
	} >"$WORK/entries"
	while IFS="$TAB" read -r kind sum p; do
		remove_entry "$kind" "$sum" "$p"
	done <"$WORK/entries"
	if [ "$DRY_RUN" = 1 ]; then
		report "would be removed" "$m"
		report "would be removed" "$(h "$MANIFEST_DIR_T")/ (if empty)"
		say ""
		say "Dry run: nothing was changed."
		return 0
	fi
	rm -f -- "$m"
	report removed "$m"
	rmdir -- "$(rp "$MANIFEST_DIR_T")" 2>/dev/null && report removed "$(h "$MANIFEST_DIR_T")/"
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
STAGE_DIRS=()
cleanup() {
	for d in "${STAGE_DIRS[@]}"; do rm -rf -- "$d"; done
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$UNINSTALL" = 1 ]; then
	do_uninstall
else
	do_install
fi
