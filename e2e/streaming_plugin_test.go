package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
)

// The placeholders of the example configurations in docs/ that a user
// replaces, and so does the fleet test.
const (
	fleetDocsAPIKey      = "11111111-2222-3333-4444-555555555555"
	fleetDocsDestination = "parent.example.internal:19999"
)

// A fleet as docs/streaming.md sets it up: a child Netdata runs audit.plugin
// (installed by install.sh, run as user netdata with nothing but its file
// capability) and streams to a parent on loopback, both configured with
// exactly docs/stream.child.conf, docs/stream.parent.conf and
// docs/netdata.child.conf (API key and destination substituted). The parent
// shows the child's linux_audit charts with the kernel's values, and
// evaluates the installed alerts for the child, which evaluates none itself.
//
// It runs on each agent of the matrix (parent and child of the same version).
func TestIntegrationFleetStreamsAuditPlugin(t *testing.T) {
	netdatatest.RequireNetdata(t)
	testkit.RequireTools(t, "bash", "setcap", "getcap", "go")
	for _, a := range netdatatest.Agents {
		t.Run(a.Name, func(t *testing.T) {
			a.Require(t)
			testFleetStreamsAuditPlugin(t, a)
		})
	}
}

func testFleetStreamsAuditPlugin(t *testing.T, agent netdatatest.Agent) {
	// The plugin reads the real kernel: nobody may change the audit state
	// meanwhile (the kernel tests reproduce overflows).
	kerneltest.Lock(t)
	t0 := time.Now()

	repo := testkit.Root(t)
	plugin := testkit.BuildPlugin(t, "-ldflags", "-X main.version=e2e")
	alert, standIn := fleetAlertFile(t, repo)
	if standIn {
		t.Logf("health.d/audit.conf does not exist yet: using a stand-in alert file")
	}

	// install.sh into a fake tree: the child's plugins.d and the parent's
	// stock health.d.
	root := t.TempDir()
	pluginsDir := filepath.Join(root, "usr/lib/netdata/plugins.d")
	healthDir := filepath.Join(root, "usr/lib/netdata/conf.d/health.d")
	for _, d := range []string{pluginsDir, healthDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("bash", filepath.Join(repo, "install.sh"),
		"--root", root, "--binary", plugin, "--alert-file", alert, "--no-systemd").CombinedOutput()
	if err != nil {
		t.Fatalf("install.sh --root %s: %v\n%s", root, err, out)
	}
	installed := filepath.Join(pluginsDir, "audit.plugin")

	key := netdatatest.NewAPIKey()
	parentConf := fleetConfigDir(t, "parent", map[string]string{
		"stream.conf": fleetSubstitute(t, filepath.Join(repo, "docs", "stream.parent.conf"), fleetDocsAPIKey, key),
	})
	parent := netdatatest.Start(t, netdatatest.Options{
		Binary:       agent.Binary,
		HealthDir:    healthDir,
		RunAsNetdata: true,
		Hostname:     "audit-parent",
		ExtraConf:    "[directories]\n\tconfig = " + parentConf + "\n",
	})
	childConf := fleetConfigDir(t, "child", map[string]string{
		"stream.conf": fleetSubstitute(t, filepath.Join(repo, "docs", "stream.child.conf"),
			fleetDocsAPIKey, key, fleetDocsDestination, parent.Addr()),
	})
	child := netdatatest.Start(t, netdatatest.Options{
		Binary:       agent.Binary,
		PluginsDir:   pluginsDir,
		RunAsNetdata: true,
		Hostname:     "audit-child",
		ExtraConf: testkit.ReadFile(t, filepath.Join(repo, "docs", "netdata.child.conf")) +
			"\n[directories]\n\tconfig = " + childConf + "\n",
	})
	t.Logf("parent %s and child %s running after %v", parent.Addr(), child.Addr(), fleetSince(t0))

	ch := parent.WaitHost(t, child, 30*time.Second)
	t.Logf("child connected after %v", fleetSince(t0))
	ch.WaitChart(t, "linux_audit.backlog_utilization", 30*time.Second)
	t.Logf("child's linux_audit.backlog_utilization has data on the parent after %v", fleetSince(t0))

	// The child's plugin: the installed file, as netdata, its capability only.
	fleetCheckPluginProcess(t, child, installed)
	if log := child.ErrorLog(); strings.Contains(log, "cannot read the audit status") || fleetDisabled(log) {
		t.Errorf("the child's error.log says the plugin could not read the kernel or was disabled:\n%s", netdatatest.Tail(log, 40))
	}

	// Every linux_audit chart of the child is on the parent, none on the
	// parent's own host, and the values are the kernel's.
	own := fleetAuditCharts(t, &child.Host)
	mirrored := fleetAuditCharts(t, ch)
	if len(own) == 0 || strings.Join(own, " ") != strings.Join(mirrored, " ") {
		t.Errorf("linux_audit charts: on the child %v, on the parent for the child %v", own, mirrored)
	}
	if p := fleetAuditCharts(t, &parent.Host); len(p) != 0 {
		t.Errorf("the parent's own host has linux_audit charts: %v", p)
	}
	st, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatalf("reading the kernel's audit status: %v", err)
	}
	fleetWantLatest(t, ch, "linux_audit.backlog_limit", "limit", float64(st.BacklogLimit))
	fleetWantLatest(t, ch, "linux_audit.enabled", map[uint32]string{0: "disabled", 1: "enabled", 2: "immutable"}[st.Enabled], 1)
	fleetWantLatest(t, ch, "linux_audit.failure_mode", map[uint32]string{0: "silent", 1: "printk", 2: "panic"}[st.Failure], 1)
	for _, id := range []string{"linux_audit.backlog", "linux_audit.lost", "linux_audit.query_latency"} {
		ch.WaitChart(t, id, 10*time.Second)
	}
	// The parent keeps the child's history on disk (default memory mode =
	// dbengine), although its own [db] mode is ram.
	if files, _ := filepath.Glob(filepath.Join(parent.Dir, "cache", "dbengine", "datafile-*")); len(files) == 0 {
		t.Errorf("the parent has no dbengine datafile in %s", filepath.Join(parent.Dir, "cache", "dbengine"))
	}

	// The parent evaluates the installed alerts for the child; the child,
	// with health disabled by docs/netdata.child.conf, evaluates none.
	templates := netdatatest.HealthAlerts(t, alert)
	deadline := time.Now().Add(3 * time.Minute)
	var alarms map[string]netdatatest.Alarm
	for {
		alarms, _, err = ch.Alarms()
		if err == nil && fleetEvaluated(alarms, "linux_audit.backlog_utilization") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the parent did not evaluate an alert on the child's linux_audit.backlog_utilization within 3 minutes: %s (err %v)",
				fleetDescribe(alarms), err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("the parent evaluated the child's alerts after %v: %s", fleetSince(t0), fleetDescribe(alarms))
	for _, tp := range templates {
		if !fleetContains(mirrored, tp.On) {
			t.Logf("alert %s is on %s, which this kernel does not chart", tp.Name, tp.On)
			continue
		}
		a, ok := alarms[tp.On+"."+tp.Name]
		if !ok {
			t.Errorf("the parent has no alert %s on the child's %s: %s", tp.Name, tp.On, fleetDescribe(alarms))
			continue
		}
		if netdatatest.AlertSourceFile(a.Source) != filepath.Join(healthDir, "linux_audit.conf") {
			t.Errorf("alert %s comes from %s, want the installed %s", tp.Name, a.Source, filepath.Join(healthDir, "linux_audit.conf"))
		}
	}
	if own, _, err := child.Alarms(); err != nil {
		t.Errorf("the child's alarms: %v", err)
	} else if len(own) != 0 {
		t.Errorf("the child evaluates alerts itself (its health should be off): %s", fleetDescribe(own))
	}
	checkNoHealthErrors(t, parent)
	t.Logf("done after %v", fleetSince(t0))
}

// ---------------------------------------------------------------------------

func fleetSince(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// fleetStandInAlerts replaces health.d/audit.conf while that file does not exist.
const fleetStandInAlerts = `# stand-in for health.d/audit.conf, written by the e2e tests
 template: linux_audit_backlog_utilization
       on: linux_audit.backlog_utilization
   lookup: max -1m unaligned of utilization
    units: %
    every: 10s
     warn: $this > 50
     info: audit backlog utilization (stand-in alert)
`

// fleetAlertFile returns the repository's health.d/audit.conf, or a stand-in
// (standIn true) while it does not exist.
func fleetAlertFile(t *testing.T, repo string) (path string, standIn bool) {
	t.Helper()
	path = filepath.Join(repo, "health.d", "audit.conf")
	if _, err := os.Stat(path); err == nil {
		return path, false
	}
	path = filepath.Join(t.TempDir(), "audit.conf")
	if err := os.WriteFile(path, []byte(fleetStandInAlerts), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, true
}

// fleetSubstitute returns the file with each OLD replaced by NEW, failing when
// OLD does not occur: the example must keep the placeholders the
// documentation tells users to replace.
func fleetSubstitute(t *testing.T, path string, oldNew ...string) string {
	t.Helper()
	s := testkit.ReadFile(t, path)
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(s, oldNew[i]) {
			t.Fatalf("%s lacks the placeholder %q", path, oldNew[i])
		}
		s = strings.ReplaceAll(s, oldNew[i], oldNew[i+1])
	}
	return s
}

// fleetConfigDir makes a Netdata user config directory ([directories] config)
// holding files, readable by user netdata.
func fleetConfigDir(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name+"-etc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files[".opt-out-from-anonymous-statistics"] = ""
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := netdatatest.OpenForOthers(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fleetContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// fleetAuditCharts lists the host's linux_audit.* chart ids, sorted.
func fleetAuditCharts(t *testing.T, h *netdatatest.Host) []string {
	t.Helper()
	charts, err := h.Charts()
	if err != nil {
		t.Fatalf("charts of %s: %v", h.HostURL(), err)
	}
	var ids []string
	for id := range charts {
		if strings.HasPrefix(id, "linux_audit.") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// fleetWantLatest waits up to 10 s for the newest value of a chart's
// dimension to be want.
func fleetWantLatest(t *testing.T, h *netdatatest.Host, chart, dim string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := h.Data(chart, 5)
		if err == nil {
			if v, ok := d.Latest(dim); ok && v == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("%s %s: newest value is not %v: %+v (err %v)", chart, dim, want, d, err)
			return
		}
		time.Sleep(netdatatest.PollInterval)
	}
}

// fleetEvaluated reports whether an alert on chart has been evaluated: its
// status is neither UNINITIALIZED nor UNDEFINED.
func fleetEvaluated(alarms map[string]netdatatest.Alarm, chart string) bool {
	for _, a := range alarms {
		if a.Chart == chart && a.Status != "UNINITIALIZED" && a.Status != "UNDEFINED" {
			return true
		}
	}
	return false
}

func fleetDescribe(alarms map[string]netdatatest.Alarm) string {
	var out []string
	for k, a := range alarms {
		out = append(out, fmt.Sprintf("%s=%s(%s)", k, a.Status, a.ValueString))
	}
	sort.Strings(out)
	return "[" + strings.Join(out, " ") + "]"
}

// fleetDisabled reports whether an error.log says Netdata disabled audit.plugin:
// 1.37 logs "PLUGINSD[audit] : PLUGINSD: plugin called DISABLE. Disabling
// it." and "... audit.plugin' (pid N) exited with error code 1 and haven't
// collected any data. Disabling it.".
func fleetDisabled(log string) bool {
	for _, l := range strings.Split(log, "\n") {
		ours := strings.Contains(l, "PLUGINSD[audit]") || strings.Contains(l, "audit.plugin")
		if ours && (strings.Contains(l, "DISABLE") || strings.Contains(l, "Disabling it")) {
			return true
		}
	}
	return false
}

// fleetCheckPluginProcess checks that the instance runs exactly one plugin, the
// file at path, as user netdata (real, effective, saved and file-system
// ids), with exactly CAP_AUDIT_CONTROL permitted and effective and nothing
// inherited or ambient: the capability comes from the file, nowhere else.
func fleetCheckPluginProcess(t *testing.T, n *netdatatest.Netdata, path string) {
	t.Helper()
	u, err := user.Lookup("netdata")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		found = found[:0]
		var mine []int
		for _, pid := range n.Processes() {
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if err != nil || !strings.HasSuffix(strings.TrimSuffix(exe, " (deleted)"), ".plugin") {
				continue
			}
			found = append(found, fmt.Sprintf("%d %s", pid, exe))
			if exe == path {
				mine = append(mine, pid)
			}
		}
		if len(found) == 1 && len(mine) == 1 {
			st, err := testkit.ReadProcStatus(mine[0])
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"Uid": strings.Repeat(u.Uid+"\t", 3) + u.Uid, "Gid": strings.Repeat(u.Gid+"\t", 3) + u.Gid,
				"CapInh": fmt.Sprintf("%016x", 0), "CapPrm": fmt.Sprintf("%016x", 1<<30),
				"CapEff": fmt.Sprintf("%016x", 1<<30), "CapAmb": fmt.Sprintf("%016x", 0),
			}
			for k, v := range want {
				if st[k] != v {
					t.Errorf("%s (pid %d): %s = %q, want %q", path, mine[0], k, st[k], v)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("want exactly one plugin process, %s; found %q", path, found)
			return
		}
		time.Sleep(netdatatest.PollInterval)
	}
}
