package installtest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/testkit"
)

// This machine's Netdata: Debian's package layout.
const (
	debPluginsDir = "/usr/lib/netdata/plugins.d"
	debHealthDir  = "/usr/lib/netdata/conf.d/health.d"
	debUnit       = "/lib/systemd/system/netdata.service"
	dropinDir     = "/etc/systemd/system/netdata.service.d"
	dropinName    = "zz-audit-plugin.conf"
	manifestDir   = "/var/lib/netdata-audit-plugin"
	manifestName  = "manifest"
	pluginName    = "audit.plugin"
	alertName     = "linux_audit.conf"
)

var (
	debPlugin   = filepath.Join(debPluginsDir, pluginName)
	debAlert    = filepath.Join(debHealthDir, alertName)
	debDropin   = filepath.Join(dropinDir, dropinName)
	debManifest = filepath.Join(manifestDir, manifestName)

	// The paths an install may create on this machine; TestMain checks that
	// none of them is left behind.
	installedPaths = []string{debPlugin, debAlert, debDropin, dropinDir, debManifest, manifestDir}
)

// debianRoots are the directories an install on this machine touches. /var/lib
// is listed by name only: other programs write below it.
var debianRoots = []testkit.SnapRoot{
	{Path: debPluginsDir, Depth: 1},
	{Path: debHealthDir, Depth: 1},
	{Path: "/etc/systemd/system", Depth: -1},
	{Path: "/etc/netdata", Depth: -1},
	{Path: "/var/lib", Depth: 1, NamesOnly: true},
	{Path: manifestDir, Depth: -1},
}

var (
	repoRoot string // the repository: install.sh and ./plugin
	script   string // install.sh

	build struct {
		once   sync.Once
		dir    string // removed by TestMain
		plugin string // audit.plugin built from ./plugin, no capability
		alert  string // the alert file the tests install
		err    error
	}
)

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "installtest:", err)
		os.Exit(1)
	}
	repoRoot = filepath.Dir(wd)
	script = filepath.Join(repoRoot, "install.sh")

	// Under the lock: another package's (or helper's) install test may be
	// between its install and its uninstall right now.
	// Only where the tests install (root, not -short): the lock may be held
	// for minutes by another package's tests.
	flag.Parse()
	check := os.Geteuid() == 0 && !testing.Short()
	var before, after string
	if check {
		underSystemLock(func() { before = existing(installedPaths) })
	}
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	// Every test uninstalls in t.Cleanup; this is the last line of defence
	// that says so loudly if one did not.
	if check {
		underSystemLock(func() { after = existing(installedPaths) })
	}
	if check && after != before {
		fmt.Fprintf(os.Stderr, "installtest: the machine was not restored: present before: [%s], after: [%s]\n", before, after)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// underSystemLock runs f holding SystemLockFile, or without it if the lock
// cannot be had (not root, or held for 5 minutes).
func underSystemLock(f func()) {
	l, err := os.OpenFile(SystemLockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		f()
		return
	}
	defer l.Close()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err := syscall.Flock(int(l.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			break
		}
	}
	f()
}

func existing(paths []string) string {
	var out []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// artifacts builds audit.plugin once per test run, and provides the alert
// file: the repository's health.d/audit.conf when it exists, else a small
// stand-in (the real one is written separately).
func artifacts(t *testing.T) (plugin, alert string) {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "installtest-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		// The netdata user runs the uninstalled binary (negative control).
		if err := os.Chmod(dir, 0o755); err != nil {
			build.err = err
			return
		}
		if build.plugin, build.err = testkit.BuildPluginIn(dir, "-ldflags", "-X main.version=installtest"); build.err != nil {
			return
		}
		build.alert = filepath.Join(repoRoot, "health.d", "audit.conf")
		if _, err := os.Stat(build.alert); err != nil {
			build.alert = filepath.Join(dir, "audit.conf")
			build.err = os.WriteFile(build.alert, []byte(standInAlerts), 0o644)
		}
	})
	if build.err != nil {
		t.Fatalf("building the test artifacts: %v", build.err)
	}
	return build.plugin, build.alert
}

// standInAlerts replaces health.d/audit.conf while that file does not exist.
const standInAlerts = `# stand-in alert file used by installtest while health.d/audit.conf does not exist
 template: linux_audit_backlog_utilization
       on: linux_audit.backlog_utilization
   lookup: max -1m unaligned of utilization
    every: 10s
     warn: $this > 50
`

// ---------------------------------------------------------------------------
// Preconditions.

func requireRoot(t *testing.T) {
	t.Helper()
	testkit.RequireRoot(t, "install.sh installs into Netdata's directories, chowns to root:netdata and sets file capabilities")
}

func netdataIDs(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("netdata")
	if err != nil {
		t.Skipf("needs the netdata user (install Debian's netdata package): %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// requireDebianNetdata skips unless this machine has Debian's netdata package
// and no audit.plugin installation of its own that the tests would disturb.
func requireDebianNetdata(t *testing.T) {
	t.Helper()
	requireRoot(t)
	testkit.RequireTools(t, "bash", "setcap", "getcap", "setpriv")
	netdataIDs(t)
	for _, p := range []string{debPluginsDir, debHealthDir, debUnit} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs Debian's netdata package (apt-get install -y --no-install-recommends netdata): %v", err)
		}
	}
	lockSystem(t)
	for _, p := range []string{debManifest, debPlugin, debAlert, debDropin} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists: audit.plugin is already installed on this machine, and these tests install and remove it; remove it first (install.sh --uninstall)", p)
		}
	}
}

// lockSystem holds SystemLockFile for the rest of t.
func lockSystem(t testing.TB) {
	t.Helper()
	testkit.Flock(t, SystemLockFile)
}

// ---------------------------------------------------------------------------
// Running install.sh.

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n[stdout]\n%s[stderr]\n%s", r.code, r.stdout, r.stderr)
}

// runScript runs `bash install.sh ARGS...`, optionally through a prefix
// command (setpriv ...) and with env replacing the environment.
func runScript(t *testing.T, prefix, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := append(append(append([]string{}, prefix...), "bash", script), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("running %v: %v", argv, err)
	}
	t.Logf("$ %s\n%s", strings.Join(argv, " "), r)
	return r
}

func install(t *testing.T, args ...string) result {
	t.Helper()
	return runScript(t, nil, nil, args...)
}

// debianArgs are the arguments of an install into this machine's Netdata
// with the test's binary and alert file.
func debianArgs(t *testing.T, extra ...string) []string {
	plugin, alert := artifacts(t)
	return append([]string{"--binary", plugin, "--alert-file", alert}, extra...)
}

// installDebian installs into this machine's Netdata and registers the
// uninstall that restores it, before installing, so that it runs whatever
// happens next.
func installDebian(t *testing.T, extra ...string) result {
	t.Helper()
	restoreOnCleanup(t)
	r := install(t, debianArgs(t, extra...)...)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	return r
}

// restoreOnCleanup uninstalls at the end of t; should install.sh leave one of
// its paths behind that was not there before, the test fails and the path is
// removed by hand.
func restoreOnCleanup(t *testing.T) {
	t.Helper()
	var before []string
	for _, p := range installedPaths {
		if _, err := os.Lstat(p); err == nil {
			before = append(before, p)
		}
	}
	t.Cleanup(func() {
		r := runScript(t, nil, nil, "--uninstall")
		if r.code != 0 {
			t.Errorf("cleanup: uninstall failed:\n%s", r)
		}
		// Files before their directories: installedPaths lists them so.
		for _, p := range installedPaths {
			if contains(before, p) {
				continue
			}
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("cleanup: uninstall left %s behind; removing it", p)
				if err := os.Remove(p); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func mustContain(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Errorf("%s lacks %q:\n%s", what, s, text)
		}
	}
}

func mustNotContain(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(text, s) {
			t.Errorf("%s has %q:\n%s", what, s, text)
		}
	}
}

// reportLine reports whether out has install.sh's line "  ACTION  PATH".
func reportLine(out, action, path string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(line, "  ") &&
			strings.HasPrefix(strings.TrimSpace(line), action+" ") && strings.Contains(line, " "+path) {
			return true
		}
	}
	return false
}

func mustReport(t *testing.T, r result, action string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if !reportLine(r.stdout, action, p) {
			t.Errorf("output has no %q line for %s:\n%s", action, p, r.stdout)
		}
	}
}

// restrictedPATH returns a PATH holding every command of the current PATH
// except the named ones (symlinks in a temporary directory).
func restrictedPATH(t *testing.T, without ...string) string {
	t.Helper()
	dir := t.TempDir()
	seen := map[string]bool{}
	for _, name := range without {
		seen[name] = true
	}
	for _, d := range filepath.SplitList(os.Getenv("PATH") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if seen[e.Name()] {
				continue
			}
			full := filepath.Join(d, e.Name())
			st, err := os.Stat(full)
			if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				continue
			}
			seen[e.Name()] = true
			if err := os.Symlink(full, filepath.Join(dir, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// envWith returns the environment with NAME=VALUE pairs replaced or added.
func envWith(kv ...string) []string {
	env := os.Environ()
	for i := 0; i+1 < len(kv); i += 2 {
		prefix := kv[i] + "="
		out := env[:0:0]
		for _, e := range env {
			if !strings.HasPrefix(e, prefix) {
				out = append(out, e)
			}
		}
		env = append(out, prefix+kv[i+1])
	}
	return env
}

// ---------------------------------------------------------------------------
// Snapshots (testkit.Snapshot): everything about the files below some
// directories, to prove that a run changed nothing (or only what it should).

type tree = testkit.Tree

func mustBeSame(t *testing.T, what string, a, b tree, c testkit.Compare) {
	t.Helper()
	if d := testkit.Diff(a, b, c); len(d) > 0 {
		t.Errorf("%s changed the file system:\n%s", what, strings.Join(d, "\n"))
	}
}

// ---------------------------------------------------------------------------
// Checks on installed files.

func checkPlugin(t *testing.T, path, src string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("plugin not installed: %v", err)
	}
	_, gid := netdataIDs(t)
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() {
		t.Errorf("%s is not a regular file: %v", path, fi.Mode())
	}
	if st.Uid != 0 || int(st.Gid) != gid {
		t.Errorf("%s is owned by %d:%d, want root:netdata (0:%d)", path, st.Uid, st.Gid, gid)
	}
	if perm := fi.Mode().Perm(); perm != 0o750 {
		t.Errorf("%s has mode %#o, want 0750", path, perm)
	}
	if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		t.Errorf("%s has a setuid/setgid/sticky bit: %v", path, fi.Mode())
	}
	out, err := exec.Command("getcap", path).CombinedOutput()
	if err != nil {
		t.Errorf("getcap %s: %v\n%s", path, err, out)
	}
	if got := strings.Fields(string(out)); len(got) == 0 || got[len(got)-1] != "cap_audit_control=ep" {
		t.Errorf("getcap %s = %q, want cap_audit_control=ep", path, out)
	}
	if src != "" && testkit.FileHash(t, path) != testkit.FileHash(t, src) {
		t.Errorf("%s differs from %s", path, src)
	}
}

func checkConfigFile(t *testing.T, path, src string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("not installed: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s: mode %v owner %d:%d, want a regular file root:root 0644", path, fi.Mode(), st.Uid, st.Gid)
	}
	if src != "" && testkit.FileHash(t, path) != testkit.FileHash(t, src) {
		t.Errorf("%s differs from %s", path, src)
	}
}

func writeFile(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// manifestEntries parses a manifest into "KIND PATH" -> SHA256 ("-" for dirs).
func manifestEntries(t *testing.T, p string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(testkit.ReadFile(t, p), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("bad manifest line %q", line)
		}
		out[f[0]+" "+f[2]] = f[1]
	}
	return out
}
