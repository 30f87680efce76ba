#!/bin/sh
# audit-plugin post-install (deb postinst configure, rpm %post 1|2): what
# install.sh does beyond copying files.
#  1. The plugin gets owner root:netdata, mode 0750 and the file capability
#     cap_audit_control+ep (neither .deb nor nfpm's .rpm carry capabilities).
#  2. Where netdata.service's capability bounding set lacks CAP_AUDIT_CONTROL
#     (Debian's 1.37 unit; Netdata 2.x's own unit has it), the drop-in
#     /etc/systemd/system/netdata.service.d/zz-audit-plugin.conf adds it: a
#     file capability works only inside the bounding set. Where it is not
#     needed (any more), the drop-in is removed. "zz-" sorts it after the
#     other drop-ins, so a later CapabilityBoundingSet= cannot undo it.
# DPKG_ROOT: dpkg --root's target tree (the group is looked up on the
# running system), also how the tests run this on a fake tree; empty for
# rpm and for a normal install.
set -e

R=${DPKG_ROOT:-}
PLUGIN=$R/usr/libexec/netdata/plugins.d/audit.plugin
DROPIN_NAME=zz-audit-plugin.conf
DROPIN_DIR=$R/etc/systemd/system/netdata.service.d
DROPIN=$DROPIN_DIR/$DROPIN_NAME

# abort-remove: a failed removal after prerm removed the drop-in.
case "${1:-}" in configure | abort-remove | 1 | 2) ;; *) exit 0 ;; esac

say() { printf 'audit-plugin: %s\n' "$*"; }

if ! getent group netdata >/dev/null 2>&1; then
	say "group netdata does not exist: install Netdata first (the netdata package creates it)" >&2
	exit 1
fi
# chown clears file capabilities: owner and mode first, then setcap.
chown root:netdata "$PLUGIN"
chmod 0750 "$PLUGIN"
if ! setcap cap_audit_control+ep "$PLUGIN"; then
	say "setcap cap_audit_control+ep $PLUGIN failed (a file system without extended attributes?); audit.plugin cannot read the audit status without it" >&2
	exit 1
fi

# --- netdata.service (the same rules as install.sh) ---

unit=
for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
	if [ -f "$R$d/netdata.service" ]; then
		unit=$R$d/netdata.service
		break
	fi
done

# The unit's drop-ins in the order systemd applies them: all of them with
# "all", else all but ours.
dropins() {
	for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
		for f in "$R$d/netdata.service.d"/*.conf; do
			[ -f "$f" ] || continue
			[ "${1:-}" != all ] && [ "${f##*/}" = "$DROPIN_NAME" ] && continue
			printf '%s\t%s\n' "${f##*/}" "$f"
		done
	done | awk -F '\t' '!seen[$1]++' | sort -t "$(printf '\t')" -k1,1 | cut -f2
}

# has_audit_cap FILES...: yes if CAP_AUDIT_CONTROL is in the bounding set
# after systemd reads FILES in order (unset: every capability; "" empties;
# "~" inverts; the first list replaces the default, later ones add, later
# "~" lists remove).
has_audit_cap() {
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

no_new_privs() {
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

need_dropin=no
if [ -n "$unit" ]; then
	# Word splitting on newlines only: unit paths have no spaces.
	files="$unit $(dropins | tr '\n' ' ')"
	# shellcheck disable=SC2086
	if [ "$(has_audit_cap $files)" = no ]; then
		need_dropin=yes
	fi
	# shellcheck disable=SC2086
	if [ "$(no_new_privs $files)" = yes ]; then
		say "warning: netdata.service sets NoNewPrivileges=yes: the kernel then ignores file capabilities; override it with NoNewPrivileges=no in a drop-in" >&2
	fi
fi

changed=no
if [ "$need_dropin" = yes ]; then
	content='# Installed by the audit-plugin package (removed with it).
# audit.plugin reads the kernel audit status with the file capability
# CAP_AUDIT_CONTROL, which works only inside the bounding set below.
# A second CapabilityBoundingSet= line adds to the set the unit already has.
[Service]
CapabilityBoundingSet=CAP_AUDIT_CONTROL'
	if [ ! -f "$DROPIN" ] || [ "$(cat "$DROPIN")" != "$content" ]; then
		mkdir -p -m 0755 "$DROPIN_DIR"
		printf '%s\n' "$content" >"$DROPIN.new"
		chmod 0644 "$DROPIN.new"
		mv -f "$DROPIN.new" "$DROPIN"
		changed=yes
		say "$unit's CapabilityBoundingSet lacks CAP_AUDIT_CONTROL: added $DROPIN"
	fi
	# A drop-in sorting after ours can still take the capability away.
	# shellcheck disable=SC2086
	if [ "$(has_audit_cap "$unit" $(dropins all | tr '\n' ' '))" = no ]; then
		say "warning: a netdata.service drop-in applied after $DROPIN removes CAP_AUDIT_CONTROL from the bounding set again; audit.plugin will not get its capability until that drop-in allows it" >&2
	fi
elif [ -f "$DROPIN" ]; then
	rm -f "$DROPIN"
	rmdir "$DROPIN_DIR" 2>/dev/null || true
	changed=yes
	say "netdata.service keeps CAP_AUDIT_CONTROL without it: removed $DROPIN"
fi

if [ "$changed" = yes ]; then
	if [ -z "$R" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	say "RESTART NEEDED for netdata.service's capability bounding set: systemctl restart netdata"
else
	say "restart Netdata to run the new plugin and load its alerts: systemctl restart netdata"
fi
exit 0
