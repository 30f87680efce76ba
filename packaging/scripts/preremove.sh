#!/bin/sh
# audit-plugin pre-remove (deb prerm remove, rpm %preun 0): removes the one
# file postinstall may have created, the netdata.service drop-in, and its
# directory if that is now empty; the package manager then removes the files
# it installed. Upgrades keep it (the new postinstall decides).
# A prerm rather than a postrm: a .deb with no conffiles and no postrm is
# purged by `dpkg -r` itself, so removing leaves nothing behind, not even in
# dpkg's database.
set -e
R=${DPKG_ROOT:-} # dpkg --root's target tree; empty for rpm
DROPIN_DIR=$R/etc/systemd/system/netdata.service.d
DROPIN=$DROPIN_DIR/zz-audit-plugin.conf
case "${1:-}" in remove | 0) ;; *) exit 0 ;; esac
if [ -f "$DROPIN" ]; then
	rm -f "$DROPIN"
	rmdir "$DROPIN_DIR" 2>/dev/null || true
	if [ -z "$R" ] && [ -d /run/systemd/system ]; then
		systemctl daemon-reload || true
	fi
	printf 'audit-plugin: removed %s; restart Netdata to drop CAP_AUDIT_CONTROL from its bounding set: systemctl restart netdata\n' "$DROPIN"
fi
exit 0
