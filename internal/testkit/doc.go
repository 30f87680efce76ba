// Package testkit is the one kit the tests of this module share: reading
// /proc/PID/status, building the plugin, polling until a condition holds,
// running a command as nobody, snapshots of file trees (what an installer
// changed), and the reasons a test skips (or, under CI=true, fails
// instead). It imports nothing from the module, so every test package, the
// product's included, can use it.
package testkit
