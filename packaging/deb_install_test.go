package packaging

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
)

// debRoots are the directories installing and removing the .deb touches
// (and dpkg's own records of it).
var debRoots = []testkit.SnapRoot{
	{Path: debPlugins, Depth: 1},
	{Path: stockHealth, Depth: 1},
	{Path: "/usr/libexec", Depth: 3},
	{Path: "/etc/systemd/system", Depth: -1},
	{Path: "/etc/netdata", Depth: -1},
	{Path: "/var/lib/netdata-audit-plugin", Depth: -1},
}

// requireDebianMachine skips unless this machine has dpkg, Debian's netdata
// package and root, takes the install lock, and skips if audit.plugin is
// installed already (by the package or by install.sh).
func requireDebianMachine(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: installs a .deb into this machine's Netdata")
	}
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("needs root: dpkg -i installs into Netdata's directories and sets a file capability (euid is %d)", euid)
	}
	testkit.RequireTools(t, "dpkg", "dpkg-deb", "dpkg-query", "setcap", "getcap", "make", "git")
	if _, err := user.Lookup("netdata"); err != nil {
		t.Skipf("needs the netdata user (Debian's netdata package): %v", err)
	}
	for _, p := range []string{debPlugins, stockHealth, debianUnit} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs Debian's netdata package (apt-get install -y --no-install-recommends netdata): %v", err)
		}
	}
	lockSystem(t)
	if st := dpkgStatus(t); st != "" {
		t.Skipf("the %s package is on this machine already (%s); these tests install and remove it: dpkg -P %s first", pkgName, st, pkgName)
	}
	for _, p := range []string{debLink, plugin, alert, dropin, installSHMan} {
		if _, err := os.Lstat(p); err == nil {
			t.Skipf("%s exists: audit.plugin is installed on this machine already; remove it first", p)
		}
	}
}

// dpkgStatus is the package's dpkg status, "" when dpkg does not know it.
func dpkgStatus(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", pkgName).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// dpkgInstall runs dpkg -i and registers, first, the purge that restores the
// machine whatever happens next.
func dpkgInstall(t *testing.T, deb string) string {
	t.Helper()
	t.Cleanup(func() {
		if dpkgStatus(t) == "" {
			return
		}
		t.Errorf("cleanup: %s is still known to dpkg; purging it", pkgName)
		if out, err := exec.Command("dpkg", "-P", pkgName).CombinedOutput(); err != nil {
			t.Errorf("cleanup: dpkg -P: %v\n%s", err, out)
		}
		for _, p := range []string{dropin, debLink, plugin, alert} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("cleanup: removing leftover %s", p)
				os.Remove(p)
			}
		}
	})
	return dpkg(t, "-i", deb)
}

func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg", args...).CombinedOutput()
	t.Logf("$ dpkg %s\n%s", strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("dpkg %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}

// checkInstalled checks what dpkg -i put on this machine.
func checkInstalled(t *testing.T, deb string) {
	t.Helper()
	g, err := user.LookupGroup("netdata")
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	fi, err := os.Lstat(plugin)
	if err != nil {
		t.Fatalf("plugin not installed: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o750 || fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 ||
		st.Uid != 0 || int(st.Gid) != gid {
		t.Errorf("%s: mode %v owner %d:%d, want a regular file root:netdata (0:%d) 0750", plugin, fi.Mode(), st.Uid, st.Gid, gid)
	}
	out, err := exec.Command("getcap", plugin).CombinedOutput()
	if f := strings.Fields(string(out)); err != nil || len(f) == 0 || f[len(f)-1] != "cap_audit_control=ep" {
		t.Errorf("getcap %s = %q (%v), want cap_audit_control=ep", plugin, out, err)
	}
	if v, err := exec.Command(plugin, "-version").Output(); err != nil || strings.TrimSpace(string(v)) != "audit.plugin "+makeVersion(t) {
		t.Errorf("%s -version = %q (%v), want audit.plugin %s", plugin, v, err, makeVersion(t))
	}
	if target, err := os.Readlink(debLink); err != nil || target != plugin {
		t.Errorf("%s -> %q (%v), want a symlink to %s", debLink, target, err, plugin)
	}
	fi, err = os.Lstat(alert)
	if err != nil {
		t.Fatalf("alert file not installed: %v", err)
	}
	st = fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("%s: mode %v owner %d:%d, want root:root 0644", alert, fi.Mode(), st.Uid, st.Gid)
	}
	if testkit.FileHash(t, alert) != testkit.FileHash(t, filepath.Join(repoRoot(t), "health.d", "audit.conf")) {
		t.Errorf("%s differs from health.d/audit.conf", alert)
	}
	// Debian's netdata.service bounds capabilities without CAP_AUDIT_CONTROL:
	// the drop-in must add it.
	b, err := os.ReadFile(dropin)
	if err != nil {
		t.Fatalf("drop-in: %v (Debian's %s lacks CAP_AUDIT_CONTROL, so the package must add it)", err, debianUnit)
	}
	if !regexp.MustCompile(`(?m)^\[Service\]\nCapabilityBoundingSet=CAP_AUDIT_CONTROL$`).Match(b) {
		t.Errorf("%s:\n%s", dropin, b)
	}
	if fi, err := os.Stat(dropin); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s mode: %v %v, want 0644", dropin, fi.Mode(), err)
	}
	if s := dpkgStatus(t); s != "ii" {
		t.Errorf("dpkg status %q, want ii", s)
	}
	if v, _ := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkgName).Output(); string(v) != wantVersion(t)+"-1" {
		t.Errorf("installed version %q, want %s-1", v, wantVersion(t))
	}
}

// The .deb on this machine (Debian 12, Debian's Netdata 1.37): dpkg -i
// installs the plugin root:netdata 0750 with cap_audit_control+ep, Debian's
// symlink, the alerts among the stock alerts and the drop-in; a real
// Netdata 1.37 reading the real plugins and stock health directories runs
// it as user netdata with only the file capability, charts the kernel's
// values and loads the packaged alerts; reinstalling (what an upgrade does:
// a new file, capability gone) gets the capability again; dpkg -r leaves
// the file system as it was and dpkg knows nothing of the package.
func TestIntegrationDebInNetdata137(t *testing.T) {
	requireDebianMachine(t)
	netdatatest.RequireNetdata(t)
	withDeb(t, true, func(t0 time.Time) {
		// install.sh refuses to install over the package (dry run: it
		// would change nothing even if it did not refuse).
		cmd := exec.Command("bash", filepath.Join(repoRoot(t), "install.sh"), "--binary", plugin,
			"--plugins-dir", debPlugins, "--health-dir", stockHealth, "--dry-run")
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), debLink) {
			t.Errorf("install.sh over the package: %v, want a refusal naming %s:\n%s", err, debLink, out)
		}

		n := netdatatest.Start(t, netdatatest.Options{
			PluginsDir:   debPlugins,
			RunAsNetdata: true,
			ExtraConf:    realLayoutConf(t, debPlugins, stockHealth),
		})
		n.WaitChart(t, "linux_audit.backlog_utilization", 30*time.Second)
		t.Logf("Netdata 1.37: linux_audit.backlog_utilization has data %v after dpkg -i", time.Since(t0).Round(100*time.Millisecond))
		pid := pluginPID(t, n.PID())
		checkRunsAsNetdata(t, pid)
		checkCharts(t, &n.Host)
		checkAlertsLoaded(t, &n.Host, n.HealthConfigErrors(), func(l string) bool { return strings.Contains(l, "unknown key 'summary'") })
		checkPluginLog(t, n.ErrorLog())
		n.Stop()
	})
}

// withDeb builds the .deb, installs it (twice, when reinstall: the second
// time as an upgrade does, a new file without the capability), checks the
// installation, runs use, and removes it with dpkg -r, checking that this
// restores the file system and leaves dpkg nothing.
func withDeb(t *testing.T, reinstall bool, use func(installedAt time.Time)) {
	t.Helper()
	deb := buildPackage(t, "deb")
	before := testkit.Snapshot(t, debRoots...)

	out := dpkgInstall(t, deb)
	t0 := time.Now()
	if !strings.Contains(out, "added "+dropin) {
		t.Errorf("dpkg -i output does not say it added the drop-in")
	}
	checkInstalled(t, deb)
	if reinstall {
		installed := testkit.Snapshot(t, debRoots...)
		dpkg(t, "-i", deb)
		checkInstalled(t, deb)
		if d := diff(installed, testkit.Snapshot(t, debRoots...)); len(d) > 0 {
			t.Errorf("reinstall changed:\n%s", strings.Join(d, "\n"))
		}
	}

	use(t0)

	out = dpkg(t, "-r", pkgName)
	if !strings.Contains(out, "removed "+dropin) {
		t.Errorf("dpkg -r output does not say it removed the drop-in")
	}
	if s := dpkgStatus(t); s != "" {
		t.Errorf("after dpkg -r, dpkg still knows %s (status %q): it should purge itself", pkgName, s)
	}
	if m, _ := filepath.Glob("/var/lib/dpkg/info/" + pkgName + ".*"); len(m) > 0 {
		t.Errorf("dpkg -r left %q", m)
	}
	if d := diff(before, testkit.Snapshot(t, debRoots...)); len(d) > 0 {
		t.Errorf("dpkg -i + dpkg -r changed the file system:\n%s", strings.Join(d, "\n"))
	}
}

// checkPluginLog fails on log lines saying the plugin could not read the
// audit status or was disabled.
func checkPluginLog(t *testing.T, log string) {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "cannot read the audit status") ||
			(strings.Contains(l, "audit") && (strings.Contains(l, "DISABLE") || strings.Contains(l, "Disabling it"))) {
			t.Errorf("log: %s", l)
		}
	}
}

// realLayoutConf makes the throwaway 1.37 run only audit.plugin from the
// real plugins directory, with the real stock health directory.
func realLayoutConf(t *testing.T, pluginsDir, health string) string {
	t.Helper()
	return netdatatest.OnlyAuditPlugin(t, pluginsDir, health)
}

// pluginPID waits up to 15 s for the one *.plugin process descending from
// the agent with pid agent, and requires it to run the packaged file.
func pluginPID(t *testing.T, agent int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var found []string
		pid := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			p, err := strconv.Atoi(e.Name())
			if err != nil || !descends(p, agent) {
				continue
			}
			exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
			if err != nil || !strings.HasSuffix(exe, ".plugin") {
				continue
			}
			found = append(found, fmt.Sprintf("%d %s", p, exe))
			if exe == plugin {
				pid = p
			}
		}
		if pid != 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process of the agent runs %s; its plugins: %q", plugin, found)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// descends reports whether process pid is a descendant of ancestor.
func descends(pid, ancestor int) bool {
	for i := 0; i < 32 && pid > 1; i++ {
		st, _ := testkit.ReadProcStatus(pid)
		ppid, err := strconv.Atoi(st["PPid"])
		if err != nil {
			return false
		}
		if ppid == ancestor {
			return true
		}
		pid = ppid
	}
	return false
}

// checkRunsAsNetdata: user netdata (all four ids), exactly CAP_AUDIT_CONTROL
// permitted and effective, nothing inherited or ambient.
func checkRunsAsNetdata(t *testing.T, pid int) {
	t.Helper()
	u, err := user.Lookup("netdata")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	testkit.CheckCredentials(t, pid, uid, gid, 1<<30)
}

// agentAPI is what the checks ask an agent: netdatatest.Host for the harness's
// 1.37, netdatatest.Lab2 for a 2.11 started with ndlab2.sh.
type agentAPI interface {
	Charts() (map[string]netdatatest.Chart, error)
	Data(chart string, afterSec int) (*netdatatest.Data, error)
	Alarms() (map[string]netdatatest.Alarm, int64, error)
	WaitChart(t testing.TB, id string, timeout time.Duration) *netdatatest.Data
}

// checkCharts: the charts exist, and those with a fixed value carry the
// kernel's. Other helpers' tests change these settings, holding the kernel
// lock for minutes; this only reads, so instead of that lock it compares
// inside a window where the kernel's values stayed the same (read before
// and after, the chart's newest value collected in between), and takes the
// lock only if no such window comes within 30 s.
func checkCharts(t *testing.T, n agentAPI) {
	t.Helper()
	for _, id := range []string{"linux_audit.backlog", "linux_audit.backlog_limit", "linux_audit.lost", "linux_audit.enabled", "linux_audit.failure_mode"} {
		n.WaitChart(t, id, 10*time.Second)
	}
	settings := func() [3]uint32 {
		st, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatalf("reading the kernel's audit status: %v", err)
		}
		return [3]uint32{st.BacklogLimit, st.Enabled, st.Failure}
	}
	compare := func(report bool) bool {
		before := settings()
		time.Sleep(2 * time.Second) // a collection after before
		type got struct {
			chart, dim string
			v          float64
			ok         bool
			err        error
		}
		read := func(chart, dim string) got {
			d, err := n.Data(chart, 5)
			if err != nil {
				return got{chart, dim, 0, false, err}
			}
			v, ok := d.Latest(dim)
			return got{chart, dim, v, ok, nil}
		}
		gots := []got{
			read("linux_audit.backlog_limit", "limit"),
			read("linux_audit.enabled", []string{"disabled", "enabled", "immutable"}[before[1]]),
			read("linux_audit.failure_mode", []string{"silent", "printk", "panic"}[before[2]]),
		}
		if settings() != before && !report {
			return false
		}
		want := []float64{float64(before[0]), 1, 1}
		for i, g := range gots {
			if g.err != nil || !g.ok || g.v != want[i] {
				if !report {
					return false
				}
				t.Errorf("%s %s = %v (ok %v, err %v), want the kernel's %v", g.chart, g.dim, g.v, g.ok, g.err, want[i])
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if compare(false) {
			return
		}
	}
	t.Log("no match within 30 s (the kernel's settings kept changing under other tests, or the charts are wrong): comparing under the kernel lock")
	kerneltest.Lock(t)
	compare(true)
}

// checkAlertsLoaded: every alert of the packaged file on a chart this kernel
// has is loaded from the packaged file; health config errors about it are
// failures unless ignore says otherwise.
func checkAlertsLoaded(t *testing.T, n agentAPI, configErrors []string, ignore func(string) bool) {
	t.Helper()
	defs := netdatatest.HealthAlerts(t, alert)
	charts, err := n.Charts()
	if err != nil {
		t.Fatal(err)
	}
	var want []netdatatest.HealthAlert
	for _, a := range defs {
		if _, ok := charts[a.On]; ok {
			want = append(want, a)
		} else {
			t.Logf("alert %s is on %s, which this kernel does not chart", a.Name, a.On)
		}
	}
	// 2.11 attaches alerts to charts some seconds after they appear.
	var alarms map[string]netdatatest.Alarm
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if alarms, _, err = n.Alarms(); err != nil {
			t.Fatal(err)
		}
		all := true
		for _, a := range want {
			if _, ok := alarms[a.On+"."+a.Name]; !ok {
				all = false
			}
		}
		if all || time.Now().After(deadline) {
			break
		}
	}
	loaded := 0
	for _, a := range want {
		got, ok := alarms[a.On+"."+a.Name]
		if !ok {
			t.Errorf("alert %s on %s is not loaded", a.Name, a.On)
			continue
		}
		// 1.37: "LINE@FILE"; 2.x: "line=LINE,file=FILE".
		if !strings.HasSuffix(got.Source, "@"+alert) && !strings.HasSuffix(got.Source, "file="+alert) {
			t.Errorf("alert %s comes from %q, want the packaged %s", a.Name, got.Source, alert)
		}
		loaded++
	}
	if loaded == 0 {
		t.Error("no packaged alert is loaded")
	}
	for _, l := range configErrors {
		if strings.Contains(l, "linux_audit") && (ignore == nil || !ignore(l)) {
			t.Errorf("health configuration error: %s", l)
		}
	}
}
