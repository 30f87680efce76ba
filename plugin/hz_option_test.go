//go:build replay

package main

import (
	"io"
	"strings"
	"testing"
)

// -kernel-config (test builds only) none hides the kernel config from the plugin: HZ must then
// come from the clock, as in a container without /proc/config.gz or /boot.
func TestKernelConfigOption(t *testing.T) {
	o, err := parseOptions([]string{"1", "-kernel-config", "none"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hz, src, err := newPlugin(o, io.Discard, io.Discard).kernelHZ()
	if err != nil || hz <= 0 || !strings.Contains(src, "clock_getres") {
		t.Errorf("HZ %d from %q (%v), want it from clock_getres", hz, src, err)
	}
	o, err = parseOptions([]string{"1", "-kernel-config", "/nonexistent/a,/nonexistent/b"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, src, err := newPlugin(o, io.Discard, io.Discard).kernelHZ(); err != nil || strings.HasPrefix(src, "/nonexistent") {
		t.Errorf("HZ from %q (%v), want the clock after two missing files", src, err)
	}
	// Default: the machine's config first when it has one.
	o, _ = parseOptions([]string{"1"}, env(nil), io.Discard)
	if hz, src, err := newPlugin(o, io.Discard, io.Discard).kernelHZ(); err != nil || hz <= 0 {
		t.Errorf("default: HZ %d from %q (%v)", hz, src, err)
	}
}
