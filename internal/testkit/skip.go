package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// SkipShort skips t under -short, which runs only the quick unit tests;
// why says what the test does that they must not (start Netdata, drive the
// kernel, install).
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: " + why)
	}
}

// RequireRoot skips t under -short and unless the process runs as root;
// why says what needs root.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	SkipShort(t, "skipping a test that needs root")
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("needs root: %s (euid is %d)", why, euid)
	}
}

// RequireTools skips t unless every tool is in PATH.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s in PATH (%v)", tool, err)
		}
	}
}

// InCI reports whether the tests run in CI (CI=true, as .ci/run sets it).
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireShared returns the path of rel inside ../shared, the directory
// beside the repository that holds what a clean clone lacks (Netdata's
// integration schemas, the Netdata 2.11 tarball, the reference audit-status
// reader). When it is missing, t skips saying so, or, under CI=true, fails:
// CI must run every test.
func RequireShared(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(Root(t)), "shared", rel)
	if _, err := os.Stat(p); err != nil {
		if InCI() {
			t.Fatalf("needs ../shared/%s beside the repository, and CI=true runs every test: %v", rel, err)
		}
		t.Skipf("skipping: needs ../shared/%s beside the repository (a clean clone has none; CI=true fails instead): %v", rel, err)
	}
	return p
}

// NobodyUID is the uid (and gid) of nobody.
const NobodyUID = 65534

// AsNobody returns argv prefixed to run as nobody: uid and gid 65534, no
// supplementary groups, so no capability unless the file carries one.
func AsNobody(argv ...string) []string {
	id := strconv.Itoa(NobodyUID)
	return append([]string{"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups"}, argv...)
}
