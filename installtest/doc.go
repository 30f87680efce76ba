// Package installtest tests install.sh, the installer at the repository
// root, by running it for real: into this machine's Netdata (Debian's package
// layout, /usr/lib/netdata/plugins.d) and into fake trees (--root). The tests
// need root and skip otherwise; each one uninstalls in t.Cleanup, so the
// machine is left as it was even when a test fails.
//
// Tests that change the real system hold SystemLockFile, so they never overlap
// with another package's tests that install into the same Netdata.
package installtest

// SystemLockFile serialises tests that install into this machine's Netdata
// (flock; released by the kernel when the holder dies).
const SystemLockFile = "/run/lock/auditplugin-install.lock"
