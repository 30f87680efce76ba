// Package packaging holds the nfpm configuration and maintainer scripts of
// the .deb and .rpm (`make deb`, `make rpm`) and their tests: the package
// contents and scriptlets are read back with dpkg-deb and rpm, and the .deb
// is installed for real with dpkg on this machine, run by a real Netdata as
// the netdata user, and removed again.
//
// The install tests hold installtest.SystemLockFile, like install.sh's
// tests, because they change the machine's real Netdata directories.
package packaging
