package e2e

// The shipped alert file (health.d/audit.conf) on a real Netdata 1.37 with
// the real plugin: this file drives the alerts with a real kernel overflow
// (kerneltest), alerts_replay_test.go drives the states this machine must
// never enter (failure mode 2) with the plugin's -replay.
//
// Netdata 1.37 facts these tests rely on, measured here:
//   - ${linux_audit.failure_mode.panic} (chart id . dimension name) and
//     ${linux_audit.failure_mode.failure_panic} (. dimension id) resolve to the
//     dimension's last value, with or without braces; an unknown variable
//     makes the expression false without any log line, and so does a bare
//     $panic on another chart. A bare $name is also looked up among the
//     dimensions of the charts of the same family (on linux_audit.daemon,
//     $enabled is linux_audit.enabled's): the file uses full names only.
//   - A lookup over a window with no value (time to overflow when the
//     backlog is not growing) gives an undefined value, and the alert is
//     CLEAR, not UNDEFINED.
//   - delay: the current up/down delays are multiplied by the multiplier
//     at every status change that comes before the previous delay ended
//     (an up 30s became 45 s, then 67 s), and the first UNINITIALIZED->CLEAR
//     counts as a change up.
//   - Netdata notifies nothing for a status equal to the last one notified
//     for that alert: a raise while a CLEAR notification is still delayed
//     is not notified again.

import (
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
)

// The alerts of health.d/audit.conf and the chart each is on.
const (
	alertUtil   = "linux_audit_backlog_utilization"
	alertPanic  = "linux_audit_panic_mode_backlog"
	alertLost   = "linux_audit_lost_records"
	alertStall  = "linux_audit_backlog_wait_stall"
	alertTTO    = "linux_audit_time_to_overflow"
	alertDaemon = "linux_audit_daemon_missing"
	alertNow    = "linux_audit_stall_now"
)

var alertChart = map[string]string{
	alertUtil:   "linux_audit.backlog_utilization",
	alertPanic:  "linux_audit.backlog_utilization",
	alertLost:   "linux_audit.lost",
	alertStall:  "linux_audit.backlog_wait_stall",
	alertTTO:    "linux_audit.time_to_overflow",
	alertDaemon: "linux_audit.daemon",
	alertNow:    "linux_audit.query_latency",
}

// Timing of the shipped file: alerts are evaluated every 10 s over windows
// of up to a minute, and a CLEAR is notified a minute after it happened
// (delay: down 1m). The first evaluation needs a full window of data.
const (
	alertEvery      = 10 * time.Second
	alertWindow     = time.Minute
	clearNotifyWait = time.Minute
)

// shippedHealthDir is a health directory holding health.d/audit.conf byte
// for byte, under the name install.sh gives it.
func shippedHealthDir(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.Root(t), "health.d", "audit.conf"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "health.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "linux_audit.conf"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// pluginDir builds the plugin and installs it for Start, with capability
// (or none); it skips when setcap is missing.
func pluginDir(t *testing.T, capability string) string {
	t.Helper()
	dir, err := netdatatest.PluginDir(t, testkit.BuildPlugin(t), capability)
	if errors.Is(err, netdatatest.ErrNoSetcap) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitLog waits for an alarm log entry of alert name, with unique_id >
// after, in one of statuses, and returns the oldest such entry.
func waitLog(t *testing.T, h *netdatatest.Host, name string, after int64, timeout time.Duration, statuses ...string) netdatatest.AlarmLogEntry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		log, err := h.AlarmLog(after)
		if err == nil {
			for _, e := range log {
				if e.Name == name && hasString(statuses, e.Status) {
					return e
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert %s: no transition to %v after id %d within %v; its log: %s (err %v)",
				name, statuses, after, timeout, describeLog(entriesOf(log, name)), err)
		}
		time.Sleep(netdatatest.PollInterval)
	}
}

// waitCurrent waits until alert name's current status (/api/v1/alarms) is
// one of statuses.
func waitCurrent(t *testing.T, h *netdatatest.Host, name string, timeout time.Duration, statuses ...string) netdatatest.Alarm {
	t.Helper()
	return waitAlarm(t, h, alertChart[name]+"."+name, timeout, statuses...)
}

// waitAlarm waits until the current status of alert key (CHART.NAME) is one
// of statuses. Waiting for CLEAR, WARNING or CRITICAL waits for the first
// evaluation on both versions (2.x's alarm log has no UNINITIALIZED->CLEAR;
// see Host.AlarmLog).
func waitAlarm(t *testing.T, h *netdatatest.Host, key string, timeout time.Duration, statuses ...string) netdatatest.Alarm {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		alarms, _, err := h.Alarms()
		a, ok := alarms[key]
		if err == nil && ok && hasString(statuses, a.Status) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert %s: status %q (present %v, err %v), want one of %v within %v", key, a.Status, ok, err, statuses, timeout)
		}
		time.Sleep(netdatatest.PollInterval)
	}
}

// latestID is the newest alarm log unique_id: a cursor meaning "from now on".
func latestID(t *testing.T, h *netdatatest.Host) int64 {
	t.Helper()
	_, id, err := h.Alarms()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// lastEntry is the newest log entry of alert name in status, or fails after
// 10 s (on 2.x the entry is the notification, a moment after the change).
func lastEntry(t *testing.T, h *netdatatest.Host, name, status string) netdatatest.AlarmLogEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		log, err := h.AlarmLog(0)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(log) - 1; i >= 0; i-- {
			if log[i].Name == name && log[i].Status == status {
				return log[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert %s: no %s entry in %s", name, status, describeLog(entriesOf(log, name)))
		}
		time.Sleep(netdatatest.PollInterval)
	}
}

// waitNotified waits until the recorder received the notification of alarm
// log entry e, and checks what the shipped file puts in it.
func waitNotified(t *testing.T, n *netdatatest.Netdata, e netdatatest.AlarmLogEntry, timeout time.Duration) netdatatest.Notification {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, x := range n.Notifications() {
			if x.UniqueID != e.UniqueID {
				continue
			}
			if x.Name != e.Name || x.Status != e.Status || x.Chart != alertChart[e.Name] || x.Roles != "sysadmin" ||
				!strings.HasSuffix(x.Source, "/linux_audit.conf") || !strings.Contains(x.Info, "audit") {
				t.Errorf("notification of %s %s: %+v", e.Name, e.Status, x)
			}
			return x
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification for %s %s->%s (unique_id %d) within %v; notifications: %s",
				e.Name, e.OldStatus, e.Status, e.UniqueID, timeout, describeNotifications(n.Notifications()))
		}
		time.Sleep(netdatatest.PollInterval)
	}
}

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func entriesOf(log []netdatatest.AlarmLogEntry, name string) []netdatatest.AlarmLogEntry {
	var out []netdatatest.AlarmLogEntry
	for _, e := range log {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func describeLog(log []netdatatest.AlarmLogEntry) string {
	var b strings.Builder
	for _, e := range log {
		fmt.Fprintf(&b, "[%d %s %s->%s %s at %s] ", e.UniqueID, e.Name, e.OldStatus, e.Status, e.ValueString,
			time.Unix(e.When, 0).Format("15:04:05"))
	}
	return b.String()
}

func describeNotifications(ns []netdatatest.Notification) string {
	var b strings.Builder
	for _, x := range ns {
		fmt.Fprintf(&b, "[%d %s %s->%s %s] ", x.UniqueID, x.Name, x.OldStatus, x.Status, x.ValueString)
	}
	return b.String()
}

func entryValue(e netdatatest.AlarmLogEntry) float64 {
	if e.Value == nil {
		return math.NaN()
	}
	return *e.Value
}

// checkNoHealthErrors fails on health configuration errors and on any
// complaint about our file, with one exception: Netdata 1.37 does not know
// the `summary` key of every alert and logs "... has unknown key 'summary'"
// for each (it still loads the alert); any other message fails, and so does
// that one on 2.x.
func checkNoHealthErrors(t *testing.T, n *netdatatest.Netdata) {
	t.Helper()
	summaryOnly := func(l string) bool {
		return n.Major < 2 && strings.Contains(l, "linux_audit.conf") && strings.HasSuffix(strings.TrimRight(l, `"`), "has unknown key 'summary'.")
	}
	for _, l := range n.HealthConfigErrors() {
		if !summaryOnly(l) {
			t.Errorf("health configuration error: %s", l)
		}
	}
	for _, l := range strings.Split(n.ErrorLog(), "\n") {
		if strings.Contains(l, "linux_audit.conf") && (strings.Contains(l, "ERROR") || strings.Contains(l, "level=error")) && !summaryOnly(l) {
			t.Errorf("%s: %s", n.Version, l)
		}
	}
}

// shippedSummaries maps each alert of health.d/audit.conf to its summary.
func shippedSummaries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testkit.Root(t), "health.d", "audit.conf"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	name := ""
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		switch {
		case !ok:
		case k == "template":
			name = strings.TrimSpace(v)
		case k == "summary":
			out[name] = strings.TrimSpace(v)
		}
	}
	return out
}

// checkSummaries checks that every alert of the shipped file is loaded
// (1.37 too, despite the unknown `summary` key) and, on 2.x, that
// /api/v1/alarms shows its summary.
func checkSummaries(t *testing.T, n *netdatatest.Netdata) {
	t.Helper()
	alarms, _, err := n.Alarms()
	if err != nil {
		t.Fatal(err)
	}
	want := shippedSummaries(t)
	if len(want) != len(alertChart) {
		t.Errorf("health.d/audit.conf has %d summaries for %d alerts: %v", len(want), len(alertChart), want)
	}
	for name, chart := range alertChart {
		a, ok := alarms[chart+"."+name]
		switch {
		case !ok:
			t.Errorf("%s: alert %s is not loaded", n.Version, name)
		case n.Major >= 2 && a.Summary != want[name]:
			t.Errorf("%s: alert %s has summary %q in /api/v1/alarms, want %q", n.Version, name, a.Summary, want[name])
		}
	}
}

// waitQuiet waits until each alert's current status is CLEAR and its last
// notification, if any, was a CLEAR.
func waitQuiet(t *testing.T, n *netdatatest.Netdata, names []string, timeout time.Duration) {
	t.Helper()
	charts := map[string]string{}
	for _, name := range names {
		charts[name] = alertChart[name]
	}
	waitQuietOn(t, n, charts, timeout)
}

// waitQuietOn is waitQuiet for alerts given with their charts (alert name:
// chart id). A raise while the previous raise's CLEAR notification is still
// held back (delay: down) is not notified again: only a quiet alert is sure
// to notify its next raise.
func waitQuietOn(t *testing.T, n *netdatatest.Netdata, charts map[string]string, timeout time.Duration) {
	t.Helper()
	names := make([]string, 0, len(charts))
	for name := range charts {
		names = append(names, name)
	}
	sort.Strings(names)
	deadline := time.Now().Add(timeout)
	for {
		alarms, _, err := n.Alarms()
		last := map[string]netdatatest.Notification{}
		for _, x := range n.Notifications() {
			if x.UniqueID > last[x.Name].UniqueID {
				last[x.Name] = x
			}
		}
		var loud []string
		for _, name := range names {
			a, ok := alarms[charts[name]+"."+name]
			x, notified := last[name]
			if err != nil || !ok || a.Status != "CLEAR" || (notified && x.Status != "CLEAR") {
				loud = append(loud, fmt.Sprintf("%s %s (last notified %q)", name, a.Status, x.Status))
			}
		}
		if len(loud) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts not quiet within %v: %v (err %v)", timeout, loud, err)
		}
		time.Sleep(netdatatest.PollInterval)
	}
}

// TestIntegrationAlertsKernelOverflow runs the plugin as Netdata runs it in
// production (user netdata, only the file capability cap_audit_control+ep)
// with the alert file exactly as shipped, and reproduces the incident on the
// real kernel: audit enabled with no audit daemon (linux_audit_daemon_missing),
// then a narrow rule, a stalled daemon and a burst of file creations that
// fills a 1,000-record backlog and loses records (utilization, lost), then
// the same with backlog_wait_time so audited processes stall (stall). Every
// alert must be raised, notified, CLEAR again once the backlog drained, and
// that CLEAR notified. The machine's failure mode is 1 (kerneltest never
// sets 2): the panic-mode alert must stay CLEAR at 100 % utilization, so its
// failure-mode condition is not always true (alerts_replay_test.go shows it
// fires in mode 2). The dashboard screenshot is taken during the overflow.
//
// Other tests use the kernel too (and wait at most 5 minutes for it), so it
// is held (kerneltest lock) only from after the alerts' first evaluation
// until their CLEAR: about 1.5 minutes, up to 3.5 when the previous holder
// left alerts raised. Their CLEAR notifications come a minute later; if
// another test's overflow raises an alert again before that, Netdata drops
// the notification, and the test says so instead of failing
// (TestIntegrationAlertsPanicModeReplay checks the CLEAR notifications of the
// same alerts undisturbed).
//
// It runs on both agents of the matrix (1.37 and 2.11) at once, watching the
// same kernel: one incident serves both, and each check runs as a subtest
// per agent. On 2.x a transition is seen once notified (Host.AlarmLog), so a
// CLEAR is waited for a minute longer (its delay), and there is no
// dashboard. An agent that cannot run here (2.11 not installed outside CI)
// is skipped with its reason.
func TestIntegrationAlertsKernelOverflow(t *testing.T) {
	netdatatest.RequireNetdata(t)
	kerneltest.RequireRoot(t)
	t.Parallel()
	kerneltest.RequireWaitTimeActual(t)
	plugins, health := pluginDir(t, "cap_audit_control+ep"), shippedHealthDir(t)
	var agents []*netdatatest.Netdata
	for _, a := range netdatatest.Agents {
		runs := false
		t.Run("start/"+a.Name, func(t *testing.T) { a.Require(t); runs = true })
		if runs {
			agents = append(agents, netdatatest.Start(t, netdatatest.Options{Binary: a.Binary, PluginsDir: plugins, HealthDir: health, RunAsNetdata: true}))
		}
	}
	if len(agents) == 0 {
		t.Skip("no agent can run here")
	}
	name := func(n *netdatatest.Netdata) string {
		return "netdata-" + strings.Join(strings.SplitN(strings.TrimPrefix(n.Version, "v"), ".", 3)[:2], ".")
	}
	// each runs check as subtests PHASE/netdata-X.Y, one per agent, and
	// stops the test if one failed.
	each := func(t *testing.T, phase string, check func(t *testing.T, n *netdatatest.Netdata)) {
		t.Helper()
		ok := t.Run(phase, func(t *testing.T) {
			for _, n := range agents {
				t.Run(name(n), func(t *testing.T) { check(t, n) })
			}
		})
		if !ok {
			t.FailNow()
		}
	}
	start := time.Now()
	elapsed := func() string { return time.Since(start).Round(time.Second).String() }

	// The plugin's charts appear, with data read from the kernel.
	each(t, "charts", func(t *testing.T, n *netdatatest.Netdata) {
		for _, id := range []string{"linux_audit.backlog_utilization", "linux_audit.backlog", "linux_audit.lost",
			"linux_audit.backlog_wait_stall", "linux_audit.enabled", "linux_audit.failure_mode", "linux_audit.daemon"} {
			n.WaitChart(t, id, 30*time.Second)
		}
		charts, err := n.Charts()
		if err != nil {
			t.Fatal(err)
		}
		for id, c := range charts {
			if !strings.HasPrefix(id, "linux_audit.") || c.Context != id || c.Plugin != "audit.plugin" {
				t.Errorf("chart %s: context %q plugin %q", id, c.Context, c.Plugin)
			}
		}
		t.Logf("%s: %d linux_audit charts with data", elapsed(), len(charts))
	})

	// Every alert's first evaluation, after a full minute.
	each(t, "evaluated", func(t *testing.T, n *netdatatest.Netdata) {
		for _, name := range []string{alertUtil, alertPanic, alertLost, alertStall, alertTTO, alertDaemon} {
			waitCurrent(t, &n.Host, name, alertWindow+alertEvery+30*time.Second, "CLEAR", "WARNING", "CRITICAL")
		}
		t.Logf("%s: every alert evaluated", elapsed())
	})

	raised := map[*netdatatest.Netdata]map[string]netdatatest.AlarmLogEntry{}
	clears := map[*netdatatest.Netdata]map[string]netdatatest.AlarmLogEntry{}
	for _, n := range agents {
		raised[n], clears[n] = map[string]netdatatest.AlarmLogEntry{}, map[string]netdatatest.AlarmLogEntry{}
	}
	ok := t.Run("kernel", func(t *testing.T) {
		// Audit on, 1,000-record backlog, no wait, no daemon registered;
		// restored when this subtest ends.
		k := kerneltest.Setup(t, kerneltest.OverflowSettings())
		held := time.Now()
		t.Logf("%s: kernel held: audit enabled, backlog_limit 1000, backlog_wait_time 0, no audit daemon", elapsed())
		each(t, "kernel values", func(t *testing.T, n *netdatatest.Netdata) {
			for chart, want := range map[string]map[string]float64{
				"linux_audit.enabled":       {"enabled": 1},
				"linux_audit.backlog_limit": {"limit": 1000},
				"linux_audit.daemon":        {"registered": 0},
				"linux_audit.failure_mode":  {"panic": 0},
			} {
				deadline := time.Now().Add(5 * time.Second)
				for dim, v := range want {
					for {
						d, err := n.Data(chart, 3)
						got, ok := 0.0, false
						if err == nil {
							got, ok = d.Latest(dim)
						}
						if ok && got == v {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("%s %s = %v (%v, err %v), want %v from the kernel", chart, dim, got, ok, err, v)
						}
						time.Sleep(netdatatest.PollInterval)
					}
				}
			}
		})

		// Enabled with no daemon running during the last minute (no daemon
		// was, unless the previous holder of the kernel registered one).
		warnAt := time.Now()
		daemonWarn := map[*netdatatest.Netdata]netdatatest.AlarmLogEntry{}
		each(t, "daemon missing", func(t *testing.T, n *netdatatest.Netdata) {
			waitCurrent(t, &n.Host, alertDaemon, alertWindow+2*alertEvery, "WARNING")
			daemonWarn[n] = lastEntry(t, &n.Host, alertDaemon, "WARNING")
			t.Logf("%s: %s %s->WARNING (%s) %v after audit was enabled", elapsed(), alertDaemon, daemonWarn[n].OldStatus,
				daemonWarn[n].ValueString, time.Since(warnAt).Round(time.Second))
		})
		// Nothing else wrong: another test's overflow before we held the
		// kernel is forgotten within a minute (the kernel counts a stall
		// when the sleeper wakes, so the previous holder's stalls may even
		// arrive now), and its CLEAR notified a minute later. Netdata does
		// not notify the status it notified last, and our raise must be.
		cursor := map[*netdatatest.Netdata]int64{}
		quietBy := time.Now().Add(alertWindow + 2*alertEvery + clearNotifyWait + alertEvery + 10*time.Second)
		each(t, "quiet", func(t *testing.T, n *netdatatest.Netdata) {
			waitQuiet(t, n, []string{alertUtil, alertPanic, alertLost, alertStall, alertTTO}, time.Until(quietBy))
			cursor[n] = latestID(t, &n.Host)
		})
		t.Logf("%s: every other alert CLEAR", elapsed())

		res := k.Overflow(0)
		t.Logf("%s: overflow: %d files, backlog peak %d/1000 (full after %v), %d records lost, load %v",
			elapsed(), res.Files, res.PeakBacklog, res.FillTime.Round(time.Millisecond), res.After.Lost-res.Before.Lost, res.LoadTime.Round(time.Millisecond))
		if res.PeakBacklog < 950 || res.After.Lost == res.Before.Lost {
			t.Fatalf("the overflow was not reproduced: %+v", res)
		}

		// The same load with backlog_wait_time 25 jiffies (0.1 s at
		// HZ=250): each record over the limit puts its process to sleep.
		k.Set(kerneltest.Settings{Enabled: 1, BacklogLimit: 1000, BacklogWaitTime: 25})
		st0, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := k.Generate(2000, res.Dir); err != nil {
			t.Fatal(err)
		}
		st1, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		k.Set(kerneltest.OverflowSettings())
		t.Logf("%s: stall load: %v, audited processes slept %d jiffies", elapsed(), time.Since(t0).Round(time.Millisecond),
			st1.BacklogWaitTimeActual-st0.BacklogWaitTimeActual)
		if st1.BacklogWaitTimeActual == st0.BacklogWaitTimeActual {
			t.Fatal("the stall was not reproduced: backlog_wait_time_actual did not grow")
		}

		// Raised within an evaluation or two; CRITICAL: the peak was 100 %.
		wait := 2*alertEvery + 20*time.Second
		each(t, "raised", func(t *testing.T, n *netdatatest.Netdata) {
			h := &n.Host
			raised[n][alertUtil] = waitLog(t, h, alertUtil, cursor[n], wait, "CRITICAL")
			raised[n][alertLost] = waitLog(t, h, alertLost, cursor[n], wait, "WARNING", "CRITICAL")
			raised[n][alertStall] = waitLog(t, h, alertStall, cursor[n], wait, "WARNING", "CRITICAL")
			daemonClear := waitLog(t, h, alertDaemon, cursor[n], wait, "CLEAR")
			for _, name := range []string{alertUtil, alertLost, alertStall} {
				e := raised[n][name]
				t.Logf("%s: %s %s->%s %s", elapsed(), name, e.OldStatus, e.Status, e.ValueString)
			}
			t.Logf("%s: %s CLEAR once the (stalled) daemon registered", elapsed(), alertDaemon)
			if v := entryValue(raised[n][alertUtil]); v < 80 {
				t.Errorf("%s CRITICAL at %v%%", alertUtil, v)
			}
			// Notified at once (no up delay), the daemon's CLEAR too.
			for _, e := range []netdatatest.AlarmLogEntry{daemonWarn[n], raised[n][alertUtil], raised[n][alertLost], raised[n][alertStall], daemonClear} {
				waitNotified(t, n, e, 30*time.Second)
			}
			// Failure mode 1 at 100 %: the panic-mode alert stays CLEAR.
			if a := waitCurrent(t, h, alertPanic, time.Second, "CLEAR"); a.Value == nil || *a.Value < 80 {
				t.Errorf("%s evaluated %v, want the peak utilization (CLEAR only because the failure mode is not panic)", alertPanic, a.Value)
			}
			if n.Major < 2 { // 2.x's dashboard is downloaded at build time upstream: none here
				t.Run("dashboard", func(t *testing.T) { dashboardScreenshot(t, n) })
			}
		})

		// The backlog drained on its own (kauditd moves the records it
		// cannot deliver out of it): CLEAR once the high values left the
		// one-minute windows. (2.x: the current status here, its log entry
		// with the notification a minute later, below.)
		each(t, "clear", func(t *testing.T, n *netdatatest.Netdata) {
			h := &n.Host
			for _, name := range []string{alertUtil, alertLost, alertStall} {
				if n.Major >= 2 {
					a := waitCurrent(t, h, name, alertWindow+2*alertEvery+30*time.Second, "CLEAR")
					t.Logf("%s: %s CLEAR (%s), %v after it was raised", elapsed(), name, a.ValueString, time.Duration(a.LastStatusChange-raised[n][name].When)*time.Second)
					continue
				}
				c := waitLog(t, h, name, raised[n][name].UniqueID, alertWindow+2*alertEvery+30*time.Second, "CLEAR")
				t.Logf("%s: %s CLEAR (%s), %v after it was raised", elapsed(), name, c.ValueString, time.Duration(c.When-raised[n][name].When)*time.Second)
				if v := entryValue(c); v != 0 && !(name == alertUtil && v < 40) {
					t.Errorf("%s CLEAR at %s", name, c.ValueString)
				}
				clears[n][name] = c
			}
			if log, err := h.AlarmLog(cursor[n]); err != nil {
				t.Error(err)
			} else if es := entriesOf(log, alertPanic); len(es) > 0 {
				t.Errorf("%s changed with failure mode 1: %s", alertPanic, describeLog(es))
			}
		})
		t.Logf("%s: restoring the kernel, held for %v", elapsed(), time.Since(held).Round(time.Second))
	})
	if !ok {
		return
	}

	// Each CLEAR is notified a minute after it happened, unless the alert
	// changed again meanwhile (Netdata then drops the delayed notification):
	// the kernel is no longer held, and another test may overflow it.
	each(t, "clear notified", func(t *testing.T, n *netdatatest.Netdata) {
		h := &n.Host
		for _, name := range []string{alertUtil, alertLost, alertStall} {
			c := clears[n][name]
			deadline := time.Now().Add(clearNotifyWait + alertEvery + 30*time.Second)
		wait:
			for {
				if n.Major >= 2 && c.UniqueID == 0 { // the CLEAR's entry is its notification
					if log, err := h.AlarmLog(raised[n][name].UniqueID); err == nil {
						for _, e := range entriesOf(log, name) {
							if e.Status == "CLEAR" {
								c = e
								if v := entryValue(c); v != 0 && !(name == alertUtil && v < 40) {
									t.Errorf("%s CLEAR at %s", name, c.ValueString)
								}
								break
							}
						}
					}
					if c.UniqueID == 0 {
						if a := waitCurrent(t, h, name, time.Second, "CLEAR", "WARNING", "CRITICAL"); a.Status != "CLEAR" {
							t.Logf("%s: %s changed again before its CLEAR notification was due (another test's use of the kernel): %s", elapsed(), name, a.Status)
							break wait
						}
					}
				}
				for _, x := range n.Notifications() {
					if x.UniqueID == c.UniqueID {
						waitNotified(t, n, c, 0)
						t.Logf("%s: %s CLEAR notified", elapsed(), name)
						break wait
					}
				}
				if log, err := h.AlarmLog(c.UniqueID); err == nil && c.UniqueID != 0 {
					if later := entriesOf(log, name); len(later) > 0 {
						t.Logf("%s: %s changed again before its CLEAR notification was due (another test's use of the kernel): %s",
							elapsed(), name, describeLog(later))
						break wait
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no notification of %s's CLEAR (unique_id %d); notifications: %s", name, c.UniqueID, describeNotifications(n.Notifications()))
				}
				time.Sleep(netdatatest.PollInterval)
			}
		}
		log, err := h.AlarmLog(0)
		if err != nil {
			t.Fatal(err)
		}
		checkNoHealthErrors(t, n)
		if t.Failed() {
			t.Logf("alarm log: %s", describeLog(log))
		}
	})
}

// TestIntegrationAlertSummaries loads the shipped file with the real plugin
// on both agents: on 1.37 every alert loads and the only complaint is one
// "unknown key 'summary'" per alert; on 2.11 nothing is logged about the
// file and /api/v1/alarms shows each alert's summary. (That the alerts also
// work on both is TestIntegrationAlertsKernelOverflow.)
func TestIntegrationAlertSummaries(t *testing.T) {
	netdatatest.RequireNetdata(t)
	t.Parallel()
	for _, a := range netdatatest.Agents {
		t.Run(a.Name, func(t *testing.T) {
			a.Require(t)
			n := netdatatest.Start(t, netdatatest.Options{Binary: a.Binary, PluginsDir: pluginDir(t, "cap_audit_control+ep"), HealthDir: shippedHealthDir(t), RunAsNetdata: true})
			// Alerts attach to their charts once those exist (time to
			// overflow has no data while the backlog is not growing).
			for name := range alertChart {
				waitCurrent(t, &n.Host, name, 30*time.Second, "UNINITIALIZED", "CLEAR", "WARNING", "CRITICAL", "UNDEFINED")
			}
			checkSummaries(t, n)
			checkNoHealthErrors(t, n)
			// 1.37 reads the health directory twice at startup (one
			// message per alert each time).
			unknown := map[string]int{}
			for _, l := range n.HealthConfigErrors() {
				// 1.37: "for template 'NAME'", 2.x: "for alarm/template 'NAME'".
				if _, rest, ok := strings.Cut(l, "template '"); ok && strings.Contains(l, "has unknown key 'summary'") {
					name, _, _ := strings.Cut(rest, "'")
					unknown[name]++
				}
			}
			for name := range alertChart {
				if (unknown[name] > 0) != (n.Major < 2) {
					t.Errorf("%s logged %d \"unknown key 'summary'\" errors for %s (want some on 1.37 only)", n.Version, unknown[name], name)
				}
			}
			if n.Major < 2 && len(unknown) != len(alertChart) {
				t.Errorf("%s: unknown key summary for %v, want the %d alerts; errors: %q", n.Version, unknown, len(alertChart), n.HealthConfigErrors())
			}
		})
	}
}
