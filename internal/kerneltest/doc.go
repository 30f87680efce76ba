// Package kerneltest lets tests of this module drive the real kernel audit
// subsystem safely: Setup changes audit settings for one test and puts every
// one of them back (on success, failure, panic, SIGINT/SIGTERM/SIGHUP, and
// after a SIGKILL via RecoveryFile), one test at a time machine-wide
// (LockFile). Overflow reproduces a backlog overflow, and ReadStatus is an
// independent AUDIT_GET reader to cross-check the plugin against.
//
// Tests that use it need root; they skip otherwise (RequireRoot). The
// failure mode is never changed: mode 2 panics the machine on a lost record.
package kerneltest
