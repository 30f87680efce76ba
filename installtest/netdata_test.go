package installtest

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
)

// install.sh's install into this machine's Netdata works in a real Netdata:
// one whose plugins directory is the real /usr/lib/netdata/plugins.d (only
// audit.plugin enabled) and whose stock health directory is the real
// /usr/lib/netdata/conf.d/health.d. The installed plugin runs as user netdata
// with nothing but its file capability, its charts carry the kernel's
// values, and the installed alerts are loaded from linux_audit.conf. A second
// install changes nothing and leaves the running plugin alone; an upgrade
// replaces the file but not the running process, which Netdata restarts from
// the new file once it exits; --uninstall leaves nothing behind.
func TestIntegrationInstalledPluginInNetdata(t *testing.T) {
	requireDebianNetdata(t) // takes SystemLockFile first
	netdatatest.RequireNetdata(t)
	kerneltest.Lock(t) // then the kernel lock: the plugin reads the real kernel
	if bnd, ok := capBnd(); ok && bnd&(1<<30) == 0 {
		t.Skipf("this test's capability bounding set (%x) lacks CAP_AUDIT_CONTROL: no file capability can work here", bnd)
	}
	plugin, alert := artifacts(t)
	t0 := time.Now()
	before := testkit.Snapshot(t, debianRoots...)

	installDebian(t)
	checkPlugin(t, debPlugin, plugin)
	checkConfigFile(t, debAlert, alert)
	installed := testkit.Snapshot(t, debianRoots...)

	n := netdatatest.Start(t, netdatatest.Options{
		PluginsDir:   debPluginsDir,
		RunAsNetdata: true,
		ExtraConf:    ndRealLayoutConf(t),
	})
	pid := ndCheckPluginRuns(t, n, debPlugin, t0)

	// The installed alerts are loaded, from the installed file.
	ndCheckAlertsLoaded(t, n, alert, func(name string, got netdatatest.Alarm) {
		if !strings.HasSuffix(got.Source, "@"+debAlert) {
			t.Errorf("alert %s comes from %q, want the installed %s", name, got.Source, debAlert)
		}
	})
	for _, l := range n.HealthConfigErrors() {
		if strings.Contains(l, alertName) && !strings.Contains(l, "unknown key 'summary'") {
			t.Errorf("health configuration error: %s", l)
		}
	}

	// A second install changes nothing, not even the running plugin.
	r := install(t, debianArgs(t)...)
	if r.code != 0 {
		t.Fatalf("second install failed:\n%s", r)
	}
	mustReport(t, r, "unchanged", debPlugin, debAlert, debDropin)
	mustContain(t, "the output", r.stdout, "Nothing to do")
	mustBeSame(t, "the second install", installed, testkit.Snapshot(t, debianRoots...), testkit.Everything)
	if again := ndPluginPID(t, n, debPlugin, 0); again != pid {
		t.Errorf("the second install restarted the plugin: pid %d, then %d", pid, again)
	}

	// An upgrade replaces the file (rename: the running process keeps the
	// old one); Netdata 1.37 restarts a plugin only when it exits.
	upgrade := ndBuildVersion(t, "installtest-upgrade")
	r = install(t, "--binary", upgrade, "--alert-file", alert)
	if r.code != 0 {
		t.Fatalf("upgrade failed:\n%s", r)
	}
	mustReport(t, r, "updated", debPlugin)
	mustReport(t, r, "unchanged", debAlert, debDropin)
	checkPlugin(t, debPlugin, upgrade)
	time.Sleep(3 * time.Second)
	if again := ndPluginPID(t, n, debPlugin+" (deleted)", 0); again != pid {
		t.Errorf("after the upgrade the old plugin (pid %d) should still run from the replaced file; found pid %d", pid, again)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("kill the old plugin: %v", err)
	}
	killed := time.Now()
	newPID := ndPluginPID(t, n, debPlugin, pid)
	t.Logf("after SIGTERM to the old plugin, Netdata started the upgraded one (pid %d) within %v", newPID, ndSince(killed))
	ndCheckRunsAsNetdata(t, newPID)
	if v := ndExeVersion(t, newPID); v != "audit.plugin installtest-upgrade" {
		t.Errorf("restarted plugin -version = %q, want the upgrade", v)
	}
	ndWaitNewData(t, n, "linux_audit.backlog_limit", killed)
	ndCheckErrorLog(t, n)

	// --uninstall removes everything the installs added.
	n.Stop()
	r = install(t, "--uninstall")
	if r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	for _, p := range installedPaths {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after --uninstall", p)
		}
	}
	mustBeSame(t, "install + upgrade + uninstall", before, testkit.Snapshot(t, debianRoots...), testkit.NotDirTimes)
	t.Logf("done after %v", ndSince(t0))
}

// ---------------------------------------------------------------------------

func ndSince(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// ndRealLayoutConf is the netdata.conf addition that makes the throwaway
// Netdata run only audit.plugin from the real plugins directory and load
// the real stock health directory.
func ndRealLayoutConf(t *testing.T) string {
	t.Helper()
	return netdatatest.OnlyAuditPlugin(t, debPluginsDir, debHealthDir)
}

// ndBuildVersion builds ./plugin with another version string (an upgrade).
func ndBuildVersion(t *testing.T, version string) string {
	t.Helper()
	return testkit.BuildPlugin(t, "-ldflags", "-X main.version="+version)
}

// ndInstanceProcs lists the live processes the instance started (their
// environment names its lib directory) with their executables.
func ndInstanceProcs(n *netdatatest.Netdata) map[int]string {
	want := []byte("\x00NETDATA_LIB_DIR=" + n.LibDir + "\x00")
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !strings.Contains("\x00"+string(env), string(want)) {
			continue
		}
		if st, _ := testkit.ReadProcStatus(pid); st["State"] == "" || strings.HasPrefix(st["State"], "Z") {
			continue
		}
		exe, err := os.Readlink("/proc/" + e.Name() + "/exe")
		if err == nil {
			out[pid] = exe
		}
	}
	return out
}

// ndPluginPID waits up to 15 s until the instance runs exactly one *.plugin,
// whose executable is exe and whose pid is not notPID, and returns its pid.
func ndPluginPID(t *testing.T, n *netdatatest.Netdata, exe string, notPID int) int {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var plugins []string
		pid := 0
		for p, x := range ndInstanceProcs(n) {
			if !strings.HasSuffix(strings.TrimSuffix(x, " (deleted)"), ".plugin") {
				continue
			}
			plugins = append(plugins, fmt.Sprintf("%d %s", p, x))
			if x == exe && p != notPID {
				pid = p
			}
		}
		if len(plugins) == 1 && pid != 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("want exactly one plugin process, %s (not pid %d); the instance runs %q", exe, notPID, plugins)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ndCheckRunsAsNetdata checks that the process runs as user netdata (real,
// effective, saved and file-system ids) with exactly CAP_AUDIT_CONTROL
// permitted and effective, and nothing inherited or ambient: the capability
// comes from the file alone.
func ndCheckRunsAsNetdata(t *testing.T, pid int) {
	t.Helper()
	uid, gid := netdataIDs(t)
	testkit.CheckCredentials(t, pid, uid, gid, 1<<30)
}

// ndExeVersion runs the process's executable with -version.
func ndExeVersion(t *testing.T, pid int) string {
	t.Helper()
	out, err := exec.Command(fmt.Sprintf("/proc/%d/exe", pid), "-version").Output()
	if err != nil {
		t.Errorf("/proc/%d/exe -version: %v", pid, err)
	}
	return strings.TrimSpace(string(out))
}

// ndCheckCharts checks the charts that always have a value against the
// kernel's audit status.
func ndCheckCharts(t *testing.T, n *netdatatest.Netdata) {
	t.Helper()
	st, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatalf("reading the kernel's audit status: %v", err)
	}
	for _, id := range []string{
		"linux_audit.backlog", "linux_audit.backlog_limit", "linux_audit.lost", "linux_audit.enabled",
		"linux_audit.failure_mode", "linux_audit.daemon", "linux_audit.rate_limit",
		"linux_audit.query_latency", "linux_audit.queries_held",
	} {
		n.WaitChart(t, id, 10*time.Second)
	}
	want := map[string][2]string{
		"linux_audit.backlog_limit": {"limit", strconv.Itoa(int(st.BacklogLimit))},
		"linux_audit.rate_limit":    {"limit", strconv.Itoa(int(st.RateLimit))},
		"linux_audit.enabled":       {[]string{"disabled", "enabled", "immutable"}[st.Enabled], "1"},
		"linux_audit.failure_mode":  {[]string{"silent", "printk", "panic"}[st.Failure], "1"},
	}
	for chart, dv := range want {
		d, err := n.Data(chart, 5)
		if err != nil {
			t.Errorf("%s: %v", chart, err)
			continue
		}
		if v, ok := d.Latest(dv[0]); !ok || strconv.FormatFloat(v, 'f', -1, 64) != dv[1] {
			t.Errorf("%s %s = %v (%v), want the kernel's %s (%v)", chart, dv[0], v, ok, dv[1], st)
		}
	}
}

// ndCheckErrorLog fails if Netdata's error.log says the plugin could not read
// the audit status or was disabled (1.37: "PLUGINSD[audit] : PLUGINSD: plugin
// called DISABLE. Disabling it.", or "... exited with error code 1 and
// haven't collected any data. Disabling it.").
func ndCheckErrorLog(t *testing.T, n *netdatatest.Netdata) {
	t.Helper()
	for _, l := range strings.Split(n.ErrorLog(), "\n") {
		if strings.Contains(l, "cannot read the audit status") ||
			((strings.Contains(l, "PLUGINSD[audit]") || strings.Contains(l, pluginName)) &&
				(strings.Contains(l, "DISABLE") || strings.Contains(l, "Disabling it"))) {
			t.Errorf("error.log: %s", l)
		}
	}
}

// ndWaitNewData waits until chart has a value collected after the time after.
func ndWaitNewData(t *testing.T, n *netdatatest.Netdata, chart string, after time.Time) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := n.Data(chart, 5)
		if err == nil {
			for _, row := range d.Rows {
				if len(row) > 1 && int64(row[0]) > after.Unix() && !math.IsNaN(row[1]) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no data collected after the plugin's restart: %+v (err %v)", chart, d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func ndChartIDs(t *testing.T, n *netdatatest.Netdata) map[string]bool {
	t.Helper()
	charts, err := n.Charts()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for id := range charts {
		out[id] = true
	}
	return out
}

func ndAlarmKeys(m map[string]netdatatest.Alarm) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ndCheckPluginRuns waits for the plugin's first data in n, then checks that
// the plugin n runs from exe runs as netdata, charts the kernel's values and
// logs no error; it returns the plugin's pid.
func ndCheckPluginRuns(t *testing.T, n *netdatatest.Netdata, exe string, t0 time.Time) int {
	t.Helper()
	n.WaitChart(t, "linux_audit.backlog_utilization", 30*time.Second)
	t.Logf("linux_audit.backlog_utilization has data after %v", ndSince(t0))
	pid := ndPluginPID(t, n, exe, 0)
	ndCheckRunsAsNetdata(t, pid)
	ndCheckCharts(t, n)
	ndCheckErrorLog(t, n)
	return pid
}

// ndCheckAlertsLoaded checks that every alert of the alert file on a chart
// this kernel has is loaded in n; check adds the caller's checks of each
// loaded alert (where it comes from, its summary).
func ndCheckAlertsLoaded(t *testing.T, n *netdatatest.Netdata, alert string, check func(name string, got netdatatest.Alarm)) {
	t.Helper()
	alarms, _, err := n.Alarms()
	if err != nil {
		t.Fatal(err)
	}
	charts := ndChartIDs(t, n)
	for _, a := range netdatatest.HealthAlerts(t, alert) {
		if !charts[a.On] {
			t.Logf("alert %s is on %s, which this kernel does not chart", a.Name, a.On)
			continue
		}
		got, ok := alarms[a.On+"."+a.Name]
		if !ok {
			t.Errorf("alert %s on %s is not loaded; /api/v1/alarms?all has %v", a.Name, a.On, ndAlarmKeys(alarms))
			continue
		}
		check(a.Name, got)
	}
}
