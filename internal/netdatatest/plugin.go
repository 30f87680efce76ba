package netdatatest

import (
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
