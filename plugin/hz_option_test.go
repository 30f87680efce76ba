//go:build replay

package main

import (
	"io"
	"testing"

	"auditplugin/host"
)

// -kernel-config (test builds only) none hides the kernel config from the plugin: HZ must then
// come from the clock, as in a container without /proc/config.gz or /boot.
func TestKernelConfigOption(t *testing.T) {
	o, err := parseOptions([]string{"1", "-kernel-config", "none"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	clock, err := host.KernelHZFrom([]string{}) // no config files: the clock's HZ
	if err != nil {
		t.Fatal(err)
	}
	hz, err := newPlugin(o, io.Discard, io.Discard).kernelHZ()
	if err != nil || hz != clock {
		t.Errorf("HZ %d (%v), want %d from the clock", hz, err, clock)
	}
	o, err = parseOptions([]string{"1", "-kernel-config", "/nonexistent/a,/nonexistent/b"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if hz, err := newPlugin(o, io.Discard, io.Discard).kernelHZ(); err != nil || hz != clock {
		t.Errorf("HZ %d (%v), want %d from the clock after two missing files", hz, err, clock)
	}
	// Default: the machine's config first when it has one.
	o, _ = parseOptions([]string{"1"}, env(nil), io.Discard)
	if hz, err := newPlugin(o, io.Discard, io.Discard).kernelHZ(); err != nil || hz <= 0 {
		t.Errorf("default: HZ %d (%v)", hz, err)
	}
}
