package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"auditplugin/internal/testkit"
)

// version.sh on a scratch git repository: untagged commits (whose hash may
// start with a digit), a release tag, commits after it, a dirty tree; every
// answer is a valid dpkg and rpm version (leading digit, no "-") and later
// commits sort later (dpkg --compare-versions).
func TestVersionScript(t *testing.T) {
	testkit.RequireTools(t, "git", "dpkg")
	script := filepath.Join(repoRoot(t), "packaging", "version.sh")
	dir := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func() string {
		t.Helper()
		cmd := exec.Command("sh", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("version.sh: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(i int) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte{byte(i)}, 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", "f")
		git("commit", "-q", "-m", "c")
	}

	if v := version(); v != "0.0.0+dev" {
		t.Errorf("outside git: %q, want 0.0.0+dev", v)
	}
	git("init", "-q")
	var got []string
	// Untagged: commit until one hash starts with a digit (it looks like
	// a version to a naive check) and one with a letter.
	digit, letter := false, false
	for i := 0; i < 64 && !(digit && letter); i++ {
		commit(i)
		h := git("rev-parse", "--short", "HEAD")
		want := "0.0.0+git" + git("rev-list", "--count", "HEAD") + ".g" + h
		if v := version(); v != want {
			t.Errorf("untagged commit %s: %q, want %q", h, v, want)
		}
		got = append(got, version())
		if h[0] >= '0' && h[0] <= '9' {
			digit = true
		} else {
			letter = true
		}
	}
	git("tag", "v1.2.0")
	if v := version(); v != "1.2.0" {
		t.Errorf("at tag v1.2.0: %q", v)
	}
	got = append(got, version())
	commit(100)
	commit(101)
	want := "1.2.0+2.g" + git("rev-parse", "--short", "HEAD")
	if v := version(); v != want {
		t.Errorf("two commits after v1.2.0: %q, want %q", v, want)
	}
	got = append(got, version())
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("dirty"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v := version(); v != want+".dirty" {
		t.Errorf("dirty: %q, want %q", v, want+".dirty")
	}
	got = append(got, version())
	git("checkout", "-q", "f")
	commit(102)
	git("tag", "1.3.0")
	if v := version(); v != "1.3.0" {
		t.Errorf("at tag 1.3.0: %q", v)
	}
	got = append(got, version())

	for i, v := range got {
		if v == "" || v[0] < '0' || v[0] > '9' || strings.Contains(v, "-") {
			t.Errorf("%q is not a valid dpkg/rpm version", v)
		}
		if err := exec.Command("dpkg", "--validate-version", v+"-1").Run(); err != nil {
			t.Errorf("dpkg --validate-version %s-1: %v", v, err)
		}
		if i > 0 {
			if err := exec.Command("dpkg", "--compare-versions", got[i-1], "lt", v).Run(); err != nil {
				t.Errorf("%q does not sort after %q", v, got[i-1])
			}
		}
	}
}
