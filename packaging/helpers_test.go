package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"auditplugin/installtest"
	"auditplugin/internal/testkit"
)

// Where the packages put things (packaging/nfpm.yaml).
const (
	pkgName      = "audit-plugin"
	plugin       = "/usr/libexec/netdata/plugins.d/audit.plugin"
	debLink      = "/usr/lib/netdata/plugins.d/audit.plugin" // Debian's netdata runs this
	debPlugins   = "/usr/lib/netdata/plugins.d"
	stockHealth  = "/usr/lib/netdata/conf.d/health.d"
	alert        = stockHealth + "/linux_audit.conf"
	dropinDir    = "/etc/systemd/system/netdata.service.d"
	dropin       = dropinDir + "/zz-audit-plugin.conf"
	debianUnit   = "/lib/systemd/system/netdata.service"
	installSHMan = "/var/lib/netdata-audit-plugin/manifest"
)

// repoRoot is the repository (go test runs in packaging/).
func repoRoot(t testing.TB) string { return testkit.Root(t) }

var built struct {
	sync.Mutex
	paths map[string]string
}

// buildPackage runs `make FORMAT` (deb or rpm) in the repository, once per
// test binary, and returns a copy of the package in a directory that lives
// as long as the test binary. The first run may download nfpm through the
// Go module proxy.
func buildPackage(t testing.TB, format string) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if p, ok := built.paths[format]; ok {
		return p
	}
	p := makePackage(t, format, sharedTempDir(t))
	if built.paths == nil {
		built.paths = map[string]string{}
	}
	built.paths[format] = p
	return p
}

var tmp struct {
	once sync.Once
	dir  string
}

// sharedTempDir is removed by TestMain.
func sharedTempDir(t testing.TB) string {
	tmp.once.Do(func() {
		d, err := os.MkdirTemp("", "packaging-")
		if err != nil {
			t.Fatal(err)
		}
		tmp.dir = d
	})
	return tmp.dir
}

// makePackage runs `make FORMAT` and copies the one package it made into dir
// under a fresh name.
func makePackage(t testing.TB, format, dir string) string {
	t.Helper()
	start := time.Now()
	root := repoRoot(t)
	cmd := exec.Command("make", "--no-print-directory", format)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %s: %v\n%s", format, err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(root, "build", pkgName+"*."+format))
	if len(matches) != 1 {
		t.Fatalf("make %s made %q, want one package in build/\n%s", format, matches, out)
	}
	b, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.MkdirTemp(dir, format+"-")
	if err != nil {
		t.Fatal(err)
	}
	// dpkg (run as root, reading as _apt with apt) needs to read it.
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, filepath.Base(matches[0]))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("make %s: %s (%d bytes) in %v", format, filepath.Base(p), len(b), time.Since(start).Round(100*time.Millisecond))
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if tmp.dir != "" {
		os.RemoveAll(tmp.dir)
	}
	os.Exit(code)
}

// wantVersion is packaging/version.sh's answer for this checkout.
func wantVersion(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("./packaging/version.sh")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("packaging/version.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// makeVersion is the Makefile's VERSION, which the plugin's -version prints.
func makeVersion(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		return "dev"
	}
	return strings.TrimSpace(string(out))
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// lockSystem holds installtest.SystemLockFile for the rest of t.
func lockSystem(t testing.TB) {
	t.Helper()
	testkit.Flock(t, installtest.SystemLockFile)
}

// ---------------------------------------------------------------------------
// File-system snapshots (testkit.Snapshot) below some directories, to prove
// that install + remove leaves the machine as it was: names, types, modes,
// owners, content and file capabilities (dpkg rewrites what it installs, so
// sizes and times do not count).

// diff lists how b differs from a.
func diff(a, b testkit.Tree) []string { return testkit.Diff(a, b, testkit.NoSizesOrTimes) }
