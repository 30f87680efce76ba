package testkit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// ModuleRoot returns the directory of this module's go.mod (module
// auditplugin), searched upwards from the working directory (a test's
// package directory).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module auditplugin\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod of module auditplugin not found above the working directory")
		}
		dir = parent
	}
}

// Root is ModuleRoot for a test: it fails t when there is none.
func Root(t testing.TB) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// BuildPluginIn builds the module's ./plugin as it ships (static: no cgo,
// -trimpath) into dir/audit.plugin and returns that path. flags are more go
// build flags: "-tags", "replay" adds the test-only -replay option;
// "-ldflags", "-X main.version=V" sets the version.
func BuildPluginIn(dir string, flags ...string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	// go test puts its own go first in PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the plugin: %w", err)
	}
	out := filepath.Join(dir, "audit.plugin")
	args := append([]string{"build", "-trimpath"}, flags...)
	cmd := exec.Command(goBin, append(args, "-o", out, "./plugin")...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, b)
	}
	return out, nil
}

// BuildPlugin builds the plugin (see BuildPluginIn) into a temporary
// directory of t; the go build cache makes repeated builds cheap.
func BuildPlugin(t testing.TB, flags ...string) string {
	t.Helper()
	bin, err := BuildPluginIn(t.TempDir(), flags...)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var shared struct {
	sync.Mutex
	dir  string
	bins map[string]string
	errs map[string]error
}

// SharedPlugin builds the plugin once per test binary and set of flags, for
// packages whose many tests run the same build. The directory is removed by
// Main, which such a package's TestMain calls.
func SharedPlugin(t testing.TB, flags ...string) string {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	key := strings.Join(flags, "\x00")
	if shared.bins == nil {
		shared.bins, shared.errs = map[string]string{}, map[string]error{}
	}
	if bin, ok := shared.bins[key]; ok {
		return bin
	}
	if err, ok := shared.errs[key]; ok {
		t.Fatal(err)
	}
	if shared.dir == "" {
		dir, err := os.MkdirTemp("", "auditplugin-testkit-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
	}
	dir, err := os.MkdirTemp(shared.dir, "build-")
	if err == nil {
		var bin string
		if bin, err = BuildPluginIn(dir, flags...); err == nil {
			shared.bins[key] = bin
			return bin
		}
	}
	shared.errs[key] = err
	t.Fatal(err)
	return ""
}

// Main runs the tests and removes what SharedPlugin built:
// func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	shared.Lock()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	shared.Unlock()
	return code
}
