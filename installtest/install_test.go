package installtest

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/testkit"
)

// The install into this machine's Netdata puts the plugin, the alerts and the
// systemd drop-in where they belong, with the right owners, modes and
// capability, adds nothing else, and says that Netdata must be restarted.
func TestIntegrationInstallDebianLayout(t *testing.T) {
	requireDebianNetdata(t)
	plugin, alert := artifacts(t)
	if strings.Contains(testkit.ReadFile(t, debUnit), "CAP_AUDIT_CONTROL") {
		t.Fatalf("%s already grants CAP_AUDIT_CONTROL: this test expects Debian 12's unit, which does not", debUnit)
	}
	_, dropinDirExisted := os.Lstat(dropinDir)
	before := testkit.Snapshot(t, debianRoots...)

	r := installDebian(t)

	checkPlugin(t, debPlugin, plugin)
	checkConfigFile(t, debAlert, alert)
	checkConfigFile(t, debDropin, "")
	dropin := testkit.ReadFile(t, debDropin)
	mustContain(t, "the drop-in", dropin, "\n[Service]\n", "\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n")
	mustReport(t, r, "installed", debPlugin, debAlert, debDropin)
	mustContain(t, "the output", r.stdout, "RESTART NEEDED", "systemctl daemon-reload && systemctl restart netdata",
		"edit-config health.d/linux_audit.conf")
	if r.stderr != "" {
		t.Errorf("unexpected stderr: %s", r.stderr)
	}

	// The manifest lists exactly what was created, with the content hashes.
	want := map[string]string{
		"file " + debPlugin: testkit.FileHash(t, plugin),
		"file " + debAlert:  testkit.FileHash(t, alert),
		"file " + debDropin: testkit.FileHash(t, debDropin),
	}
	if dropinDirExisted != nil {
		want["dir "+dropinDir] = "-"
	}
	got := manifestEntries(t, debManifest)
	if len(got) != len(want) {
		t.Errorf("manifest = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("manifest[%s] = %q, want %q", k, got[k], v)
		}
	}

	// Nothing else was added, and no file that was there changed (Netdata's
	// stock alerts included: health.d/audit.conf is neither written nor
	// shadowed).
	added := []string{debPlugin, debAlert, debDropin, manifestDir, debManifest}
	if dropinDirExisted != nil {
		added = append(added, dropinDir)
	}
	sort.Strings(added)
	after := testkit.Snapshot(t, debianRoots...)
	var gotAdded []string
	for _, d := range testkit.Diff(before, after, testkit.NotDirTimes) {
		switch {
		case strings.HasPrefix(d, "added "):
			gotAdded = append(gotAdded, strings.TrimPrefix(d, "added "))
		default:
			t.Errorf("install touched something it should not have: %s", d)
		}
	}
	if strings.Join(gotAdded, " ") != strings.Join(added, " ") {
		t.Errorf("install added %v, want %v", gotAdded, added)
	}
}

// A second install reports "unchanged" and changes no file, directory,
// owner, mode, time or capability.
func TestIntegrationInstallSecondRunUnchanged(t *testing.T) {
	requireDebianNetdata(t)
	installDebian(t)
	before := testkit.Snapshot(t, debianRoots...)

	r := install(t, debianArgs(t)...)
	if r.code != 0 {
		t.Fatalf("second install failed:\n%s", r)
	}
	mustReport(t, r, "unchanged", debPlugin, debAlert, debDropin)
	mustContain(t, "the output", r.stdout, "Nothing to do", "unchanged")
	for _, action := range []string{"installed", "updated", "created", "written", "removed"} {
		for _, p := range []string{debPlugin, debAlert, debDropin, debManifest, dropinDir} {
			if reportLine(r.stdout, action, p) {
				t.Errorf("second install says %s %s", action, p)
			}
		}
	}
	mustBeSame(t, "the second install", before, testkit.Snapshot(t, debianRoots...), testkit.Everything)
}

// --dry-run changes nothing, before an install (also when it has to build)
// and after one (install and uninstall), yet says what it would do.
func TestIntegrationInstallDryRun(t *testing.T) {
	requireDebianNetdata(t)
	restoreOnCleanup(t)
	before := testkit.Snapshot(t, debianRoots...)

	r := install(t, debianArgs(t, "--dry-run")...)
	if r.code != 0 {
		t.Fatalf("dry run failed:\n%s", r)
	}
	mustReport(t, r, "would be installed", debPlugin, debAlert, debDropin)
	mustContain(t, "the output", r.stdout, "Dry run: nothing was changed")
	mustBeSame(t, "a dry run before installing", before, testkit.Snapshot(t, debianRoots...), testkit.Everything)

	_, alert := artifacts(t)
	r = install(t, "--dry-run", "--alert-file", alert) // builds with Go into a temporary directory
	if r.code != 0 {
		t.Fatalf("dry run with a build failed:\n%s", r)
	}
	mustContain(t, "the output", r.stdout, "Building audit.plugin", "would be installed")
	mustBeSame(t, "a dry run that builds", before, testkit.Snapshot(t, debianRoots...), testkit.Everything)

	installDebian(t)
	installed := testkit.Snapshot(t, debianRoots...)
	r = install(t, "--uninstall", "--dry-run")
	if r.code != 0 {
		t.Fatalf("uninstall dry run failed:\n%s", r)
	}
	mustReport(t, r, "would be removed", debPlugin, debAlert, debDropin, debManifest)
	mustBeSame(t, "an uninstall dry run", installed, testkit.Snapshot(t, debianRoots...), testkit.Everything)

	r = install(t, debianArgs(t, "--dry-run")...)
	if r.code != 0 {
		t.Fatalf("dry run after installing failed:\n%s", r)
	}
	mustReport(t, r, "unchanged", debPlugin, debAlert, debDropin)
	mustBeSame(t, "a dry run after installing", installed, testkit.Snapshot(t, debianRoots...), testkit.Everything)
}

// --uninstall removes everything the install added, and only that; a second
// uninstall has nothing to do.
func TestIntegrationInstallUninstall(t *testing.T) {
	requireDebianNetdata(t)
	before := testkit.Snapshot(t, debianRoots...)
	installDebian(t)

	r := install(t, "--uninstall")
	if r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	mustReport(t, r, "removed", debPlugin, debAlert, debDropin, debManifest)
	mustContain(t, "the output", r.stdout, "RESTART NEEDED", "systemctl daemon-reload && systemctl restart netdata")
	for _, p := range []string{debPlugin, debAlert, debDropin, debManifest, manifestDir} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	mustBeSame(t, "install + uninstall", before, testkit.Snapshot(t, debianRoots...), testkit.NotDirTimes)

	r = install(t, "--uninstall")
	if r.code != 0 {
		t.Fatalf("second uninstall failed:\n%s", r)
	}
	mustContain(t, "the output", r.stdout, "Nothing to uninstall")
	mustBeSame(t, "a second uninstall", before, testkit.Snapshot(t, debianRoots...), testkit.NotDirTimes)
}

// Without --binary, install.sh builds the plugin from this tree with Go.
func TestIntegrationInstallBuildsPlugin(t *testing.T) {
	requireDebianNetdata(t)
	testkit.RequireTools(t, "go")
	_, alert := artifacts(t)
	restoreOnCleanup(t)
	r := install(t, "--alert-file", alert)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	mustContain(t, "the output", r.stdout, "Building audit.plugin")
	checkPlugin(t, debPlugin, "")
	out, err := exec.Command(debPlugin, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "audit.plugin ") || strings.Contains(string(out), "installtest") {
		t.Errorf("installed plugin -version = %q, %v; want the version of this tree", out, err)
	}
}

// Each refusal exits 1 with one line naming the problem and the fix, and
// changes nothing.
func TestIntegrationInstallRefusals(t *testing.T) {
	requireDebianNetdata(t)
	plugin, alert := artifacts(t)
	restoreOnCleanup(t) // in case a refusal does not refuse
	empty := t.TempDir()

	cases := []struct {
		name   string
		prefix []string
		env    []string
		args   []string
		want   []string
	}{
		{
			name:   "not root",
			prefix: testkit.AsNobody(),
			args:   []string{"--binary", plugin, "--alert-file", alert},
			want:   []string{"must run as root", "sudo"},
		},
		{
			name: "Netdata not found (--plugins-dir)",
			args: []string{"--binary", plugin, "--alert-file", alert, "--plugins-dir", "/nonexistent/netdata/plugins.d"},
			want: []string{"Netdata not found", "/nonexistent/netdata/plugins.d", "--plugins-dir", "install Netdata"},
		},
		{
			name: "Netdata not found (--root)",
			args: []string{"--binary", plugin, "--alert-file", alert, "--root", empty},
			want: []string{"Netdata not found", "/usr/lib/netdata/plugins.d", "install Netdata", "--plugins-dir"},
		},
		{
			name: "setcap missing",
			env:  envWith("PATH", restrictedPATH(t, "setcap", "getcap")),
			args: []string{"--binary", plugin, "--alert-file", alert},
			want: []string{"setcap not found", "libcap2-bin"},
		},
		{
			name: "Go missing when it must build",
			env:  envWith("PATH", restrictedPATH(t, "go")),
			args: []string{"--alert-file", alert},
			want: []string{"Go is not installed", "--binary"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := testkit.Snapshot(t, debianRoots...)
			r := runScript(t, c.prefix, c.env, c.args...)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "install.sh: ") {
				t.Errorf("want one line 'install.sh: ...' on stderr, got %q", r.stderr)
			}
			mustContain(t, "the refusal", r.stderr, c.want...)
			if r.stdout != "" {
				t.Errorf("a refusal printed on stdout: %q", r.stdout)
			}
			mustBeSame(t, "a refused install", before, testkit.Snapshot(t, debianRoots...), testkit.Everything)
		})
	}
}

// The installed plugin, run as the netdata user with nothing but its file
// capability, reads the real kernel: it prints its charts and data, not
// DISABLE. The same binary without the capability does print DISABLE, so it
// is the capability that makes the difference.
func TestIntegrationInstallPluginRunsAsNetdata(t *testing.T) {
	requireDebianNetdata(t)
	kerneltest.Lock(t)
	plugin, _ := artifacts(t)
	uid, gid := netdataIDs(t)
	if bnd, ok := capBnd(); ok && bnd&(1<<30) == 0 {
		t.Skipf("this test's capability bounding set (%x) lacks CAP_AUDIT_CONTROL: no file capability can work here", bnd)
	}
	if out, _ := runPlugin(t, 0, 0, plugin); !hasChart(out) {
		t.Skipf("the plugin cannot read the audit status even as root (no kernel audit here?): %v", out)
	}

	installDebian(t)
	out, stderr := runPlugin(t, uid, gid, debPlugin)
	t.Logf("as netdata: %d lines, the first %q, the last %q", len(out), first(out), last(out))
	if !hasChart(out) || contains(out, "DISABLE") {
		t.Errorf("installed plugin run as netdata (%d:%d) printed no CHART or printed DISABLE:\n%s\nstderr:\n%s",
			uid, gid, strings.Join(out, "\n"), stderr)
	}
	if !hasPrefix(out, "BEGIN ") {
		t.Errorf("installed plugin run as netdata sent no data (BEGIN):\n%s\nstderr:\n%s", strings.Join(out, "\n"), stderr)
	}

	out, stderr = runPlugin(t, uid, gid, plugin)
	if !contains(out, "DISABLE") || !strings.Contains(stderr, "CAP_AUDIT_CONTROL") {
		t.Errorf("control: the plugin without its file capability should DISABLE, naming CAP_AUDIT_CONTROL:\n%s\nstderr:\n%s",
			strings.Join(out, "\n"), stderr)
	}
}

// After install, edit-config offers the alerts under their own name, and an
// uninstall leaves the user's copy alone.
func TestIntegrationInstallEditConfig(t *testing.T) {
	requireDebianNetdata(t)
	_, alert := artifacts(t)
	editConfig := "/etc/netdata/edit-config"
	userCopy := "/etc/netdata/health.d/" + alertName
	if _, err := os.Stat(editConfig); err != nil {
		t.Skipf("needs %s: %v", editConfig, err)
	}
	if _, err := os.Lstat(userCopy); err == nil {
		t.Skipf("%s exists: the test would change a user's alerts", userCopy)
	}
	t.Cleanup(func() { os.Remove(userCopy) })
	installDebian(t)

	cmd := exec.Command(editConfig, "health.d/"+alertName)
	cmd.Dir = "/etc/netdata"
	cmd.Env = envWith("EDITOR", "true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("edit-config: %v\n%s", err, out)
	}
	if testkit.FileHash(t, userCopy) != testkit.FileHash(t, alert) {
		t.Errorf("edit-config's copy %s differs from the alerts", userCopy)
	}

	r := install(t, debianArgs(t)...)
	mustContain(t, "the output", r.stdout, "your copy "+userCopy)

	r = install(t, "--uninstall")
	if r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	if _, err := os.Stat(userCopy); err != nil {
		t.Errorf("uninstall removed the user's copy: %v", err)
	}
}

// ---------------------------------------------------------------------------

// capBnd is this process's capability bounding set.
func capBnd() (uint64, bool) {
	st, err := testkit.ReadProcStatus(os.Getpid())
	if err != nil {
		return 0, false
	}
	return st.Hex("CapBnd")
}

func first(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0]
}

func last(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func hasChart(lines []string) bool { return hasPrefix(lines, "CHART linux_audit.") }

func hasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// runPlugin runs the plugin as uid:gid (no supplementary groups, no inherited
// capabilities) as Netdata would, with update every 1 s, until its first data
// (BEGIN), DISABLE, exit or 20 s; it returns the stdout lines and stderr.
func runPlugin(t *testing.T, uid, gid int, path string) ([]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "setpriv", "--reuid="+strconv.Itoa(uid), "--regid="+strconv.Itoa(gid), "--clear-groups", path, "1")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "NETDATA_UPDATE_EVERY=1"}
	cmd.Dir = "/"
	stdin, err := cmd.StdinPipe() // kept open, as Netdata does
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		lines = append(lines, line)
		if strings.HasPrefix(line, "BEGIN ") || line == "DISABLE" {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	return lines, stderr.String()
}
