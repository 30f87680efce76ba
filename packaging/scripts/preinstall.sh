#!/bin/sh
# audit-plugin pre-install (deb preinst install|upgrade, rpm %pre 1|2).
# Refuses to install over a copy installed by install.sh: the two would fight
# over the plugin and the drop-in, and install.sh --uninstall could not tell
# which files are its own.
set -e
if [ -f "${DPKG_ROOT:-}/var/lib/netdata-audit-plugin/manifest" ]; then
	echo "audit-plugin: audit.plugin is already installed by install.sh (/var/lib/netdata-audit-plugin/manifest exists); remove that copy first: sudo ./install.sh --uninstall" >&2
	exit 1
fi
exit 0
