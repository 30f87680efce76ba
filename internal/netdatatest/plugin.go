package netdatatest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// ModuleRoot returns the directory of this module's go.mod (module
// auditplugin), searched upwards from the working directory (a test's
// package directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module auditplugin\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("e2e: go.mod of module auditplugin not found above the working directory")
		}
		dir = parent
	}
}

// BuildPlugin builds the module's ./plugin as a static executable in a
// temporary directory of t and returns its path (the go build cache makes
// repeated builds cheap). Build tags select test-only code: "replay" adds
// the -replay option, which the shipped binary does not have.
func BuildPlugin(t testing.TB, tags ...string) string {
	t.Helper()
	// go test puts its own go first in PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("e2e: building the plugin: %v", err)
	}
	out := filepath.Join(t.TempDir(), "audit.plugin")
	cmd := exec.Command(goBin, "build", "-tags", strings.Join(tags, ","), "-o", out, "./plugin")
	cmd.Dir = ModuleRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("e2e: go build ./plugin: %v\n%s", err, b)
	}
	return out
}

// ErrNoSetcap is returned by PluginDir when a capability was asked for and
// setcap is not installed (Debian package libcap2-bin).
var ErrNoSetcap = errors.New("setcap not found (install libcap2-bin)")

// PluginDir makes a plugins directory for Start holding a copy of the
// executable bin as audit.plugin, installed as install.sh does: owner
// root:netdata, mode 0750. A non-empty capability (e.g.
// "cap_audit_control+ep") is set on the copy with setcap, and the copy is
// checked to carry exactly that. It needs root.
func PluginDir(t testing.TB, bin, capability string) (string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "plugins.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, "audit.plugin")
	if err := os.WriteFile(dst, b, 0o750); err != nil {
		return "", err
	}
	g, err := user.LookupGroup("netdata")
	if err != nil {
		return "", err
	}
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(dst, 0, gid); err != nil {
		return "", err
	}
	if err := os.Chmod(dst, 0o750); err != nil { // after chown, which may clear bits
		return "", err
	}
	if capability == "" {
		return dir, nil
	}
	setcap, err := exec.LookPath("setcap")
	if err != nil {
		return "", ErrNoSetcap
	}
	if out, err := exec.Command(setcap, capability, dst).CombinedOutput(); err != nil {
		return "", fmt.Errorf("setcap %s %s: %v: %s", capability, dst, err, out)
	}
	if getcap, err := exec.LookPath("getcap"); err == nil {
		out, err := exec.Command(getcap, dst).CombinedOutput()
		// getcap prints "FILE cap_audit_control=ep".
		want := strings.Replace(capability, "+", "=", 1)
		if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), " "+want) {
			return "", fmt.Errorf("getcap %s = %q (%v), want %s", dst, out, err, want)
		}
	}
	return dir, nil
}
