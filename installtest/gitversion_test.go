package installtest

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"auditplugin/internal/testkit"
)

// install.sh builds as root, often in a checkout owned by someone else (sudo
// ./install.sh). Nothing the checkout configures may run then: git runs
// core.fsmonitor (and hooks, aliases, ...) from the repository's config, and
// go build runs git for its VCS stamp. The checkout here is owned by nobody,
// with a core.fsmonitor and a hooks directory whose programs record who ran
// them; the build must run none of them, and still stamp the version: the
// tag on HEAD, else the commit.
func TestIntegrationInstallBuildRunsNoRepositoryConfig(t *testing.T) {
	requireFakeRoot(t)
	testkit.RequireTools(t, "git", "go")
	_, alert := artifacts(t)
	base := t.TempDir()
	openUp(t, base)
	src := filepath.Join(base, "src")
	copyTree(t, repoRoot, src)

	gitEnv := []string{"HOME=" + base, "GIT_CONFIG_NOSYSTEM=1", "PATH=" + os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com"}
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = gitEnv
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(src, "init", "-q", "-b", "main")
	git(src, "add", "-A")
	git(src, "commit", "-qm", "one")
	git(src, "tag", "-a", "-m", "release", "v9.8.7-test")
	git(src, "pack-refs", "--all") // the annotated tag is read from packed-refs, peeled
	tagged := git(src, "rev-parse", "HEAD")
	wt := filepath.Join(base, "wt")
	git(src, "worktree", "add", "-q", "--detach", wt, "HEAD") // .git is a file there
	writeFile(t, filepath.Join(src, "NEWS"), "two\n", 0o644)
	git(src, "add", "NEWS")
	git(src, "commit", "-qm", "two") // main's loose ref moves past the tag
	untagged := git(src, "rev-parse", "HEAD")

	// The traps: what git, or go build through git, would run.
	marker := filepath.Join(base, "ran")
	trap := filepath.Join(base, "trap")
	writeFile(t, trap, "#!/bin/sh\necho \"uid $(id -u): $0 $*\" >>"+marker+"\n", 0o755)
	hooks := filepath.Join(base, "hooks")
	for _, h := range []string{"pre-commit", "post-checkout", "post-index-change", "fsmonitor-watchman", "reference-transaction", "pre-auto-gc"} {
		writeFile(t, filepath.Join(hooks, h), "#!/bin/sh\nexec "+trap+" hook "+h+"\n", 0o755)
	}
	git(src, "config", "core.fsmonitor", trap)
	git(src, "config", "core.hooksPath", hooks)
	git(src, "config", "alias.describe", "!"+trap+" alias")
	if err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, nobody, nobody)
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o777); err != nil { // the trap may write its marker as anyone
		t.Fatal(err)
	}

	cases := []struct{ name, tree, want string }{
		{"checkout at a commit without a tag", src, untagged[:12]},
		{"worktree at the tagged commit", wt, "v9.8.7-test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(marker)
			root := fakeNetdata(t, "debian", "")
			// As `cd CHECKOUT && sudo ./install.sh` would.
			cmd := exec.Command("bash", filepath.Join(c.tree, "install.sh"), "--root", root, "--alert-file", alert)
			cmd.Dir = c.tree
			out, err := cmd.CombinedOutput()
			t.Logf("install.sh in %s:\n%s", c.tree, out)
			if err != nil {
				t.Fatalf("install: %v", err)
			}
			if b, err := os.ReadFile(marker); err == nil {
				t.Errorf("the build ran the checkout's configured programs:\n%s", b)
			}
			installed := root + layouts["debian"].plugins + "/" + pluginName
			v, err := exec.Command(installed, "-version").Output()
			if got := strings.TrimSpace(string(v)); err != nil || got != "audit.plugin "+c.want {
				t.Errorf("%s -version = %q, %v; want %q", installed, got, err, "audit.plugin "+c.want)
			}
			cmd = exec.Command("bash", filepath.Join(c.tree, "install.sh"), "--root", root, "--uninstall")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("uninstall: %v\n%s", err, out)
			}
		})
	}
	t.Logf("tagged commit %s, untagged %s", tagged, untagged)
}

// copyTree copies the regular files of the repository (not .git) to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" && strings.HasPrefix(rel, "bench")) {
			return filepath.SkipDir
		}
		if d.Name() == ".git" {
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}
