package e2e

// Netdata 2.11's own audit module (debugfs.plugin, charts audit.*, stock
// alerts audit_backlog_utilization and audit_lost_events) beside audit.plugin
// (linux_audit.*) during one real incident with a long backlog_wait_time;
// and the coexistence step that silences one side's alert.

import (
	"auditplugin/internal/netdatatest"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"auditplugin/host"
	"auditplugin/internal/kerneltest"
)

// silenceBuiltinLost is the coexistence step the README documents: the
// netdata.conf pattern of alerts to load, without Netdata's audit_lost_events
// (`!` excludes, `*` keeps every other alert). Ours is silenced the same way
// with !linux_audit_lost_records.
const silenceBuiltinLost = "[health]\n\tenabled alarms = !audit_lost_events *\n"

// sideBySide is one row of the README's table: a chart of each side.
type sideBySide struct {
	builtin, ours       string // chart ids
	builtinDim, oursDim string // dimension names
}

var sideBySideCharts = []sideBySide{
	{"audit.backlog", "linux_audit.backlog", "used", "peak"},
	{"audit.backlog_utilization", "linux_audit.backlog_utilization", "utilization", "peak"},
	{"audit.lost", "linux_audit.lost", "lost", "lost"},
}

// chartStats summarizes one dimension over the incident window.
type chartStats struct {
	rows, gaps, longestGap int
	max                    float64
	firstGapAt             int64 // unix seconds, 0 if none
}

func statsOf(d *netdatatest.Data, dim string) (chartStats, error) {
	col := d.Column(dim)
	if col == nil {
		return chartStats{}, fmt.Errorf("no dimension %q in %v", dim, d.Labels)
	}
	s := chartStats{rows: len(col), max: math.NaN()}
	run := 0
	// Rows are newest first: walk oldest first.
	for i := len(col) - 1; i >= 0; i-- {
		v := col[i]
		if math.IsNaN(v) {
			s.gaps++
			run++
			if run > s.longestGap {
				s.longestGap = run
			}
			if s.firstGapAt == 0 {
				s.firstGapAt = int64(d.Rows[i][0])
			}
			continue
		}
		run = 0
		if math.IsNaN(s.max) || v > s.max {
			s.max = v
		}
	}
	return s, nil
}

// TestIntegrationBuiltinAuditSideBySide runs Netdata 2.11 with debugfs.plugin
// (its audit module) and audit.plugin together, with the stock audit alerts
// and ours, and a second 2.11 configured with the README's coexistence step
// (audit_lost_events not loaded). One incident on the real kernel serves
// both: a 1,000-record backlog with backlog_wait_time 6 s, a registered
// audit daemon that never reads, and 2,000 audited file creations, so
// records are lost and audited processes, and every sender of an audit
// netlink message (AUDIT_GET included), sleep up to 6 s.
//
// It asserts what must hold for audit.plugin: linux_audit.* have no gap
// during the incident, and our alerts are raised and notified on both
// agents; and the coexistence step: the second agent never raises nor
// notifies audit_lost_events while ours notifies the same loss. The built-in
// side is recorded (gaps, values, when its alerts rise), not asserted; the
// log's table is the README's.
func TestIntegrationBuiltinAuditSideBySide(t *testing.T) {
	netdatatest.RequireNetdata(t)
	kerneltest.RequireRoot(t)
	netdatatest.Agent2.Require(t)
	t.Parallel()
	kerneltest.RequireWaitTimeActual(t)
	hz, err := host.KernelHZ()
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	const waitSeconds = 6
	opts := netdatatest.Options{
		Binary: netdatatest.Agent2.Binary, PluginsDir: pluginDir(t, "cap_audit_control+ep"), HealthDir: shippedHealthDir(t),
		RunAsNetdata: true, StockPlugins: []string{"debugfs"}, StockHealth: true,
	}
	both := netdatatest.Start(t, opts)
	quiet := opts
	quiet.ExtraConf = silenceBuiltinLost
	silenced := netdatatest.Start(t, quiet)
	start := time.Now()
	elapsed := func() string { return time.Since(start).Round(time.Second).String() }

	for _, n := range []*netdatatest.Netdata{both, silenced} {
		for _, c := range sideBySideCharts {
			n.WaitChart(t, c.builtin, 30*time.Second)
			n.WaitChart(t, c.ours, 30*time.Second)
		}
	}
	// The step loads every alert but audit_lost_events.
	for name, want := range map[string][2]bool{ // alert: loaded on both, on silenced
		"audit.lost.audit_lost_events":                        {true, false},
		"audit.backlog_utilization.audit_backlog_utilization": {true, true},
		"linux_audit.lost.linux_audit_lost_records":           {true, true},
	} {
		for i, n := range []*netdatatest.Netdata{both, silenced} {
			deadline := time.Now().Add(10 * time.Second)
			for {
				alarms, _, err := n.Alarms()
				_, ok := alarms[name]
				if err == nil && ok == want[i] {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("agent %d: alert %s loaded %v (err %v), want %v", i, name, ok, err, want[i])
				}
				time.Sleep(netdatatest.PollInterval)
			}
		}
	}
	// First evaluations (a full minute of data) before the kernel is held.
	evaluated := alertWindow + alertEvery + 30*time.Second
	waitAlarm(t, &both.Host, "audit.lost.audit_lost_events", evaluated, "CLEAR", "WARNING", "CRITICAL")
	for _, n := range []*netdatatest.Netdata{both, silenced} {
		for _, name := range []string{alertLost, alertUtil, alertStall} {
			waitCurrent(t, &n.Host, name, evaluated, "CLEAR", "WARNING", "CRITICAL")
		}
	}
	t.Logf("%s: both agents run debugfs.plugin and audit.plugin; every alert evaluated", elapsed())
	cursor := map[*netdatatest.Netdata]int64{}
	watch := map[string]string{ // alert: its chart
		"audit_lost_events": "audit.lost", "audit_backlog_utilization": "audit.backlog_utilization",
		alertLost: alertChart[alertLost], alertUtil: alertChart[alertUtil], alertStall: alertChart[alertStall],
	}

	var t0, t1 time.Time
	var res kerneltest.OverflowResult
	var stalled uint32
	ok := t.Run("kernel", func(t *testing.T) {
		k := kerneltest.Setup(t, kerneltest.Settings{Enabled: 1, BacklogLimit: 1000, BacklogWaitTime: uint32(waitSeconds * hz)})
		t.Logf("%s: kernel held: backlog_limit 1000, backlog_wait_time %d jiffies (%d s at HZ=%d)", elapsed(), waitSeconds*hz, waitSeconds, hz)
		// The previous holder's incident must be forgotten first, so that
		// each alert rises from CLEAR, and its CLEAR notified: Netdata does
		// not notify a raise while the previous CLEAR notification is still
		// held back (delay: down 1m), and on 2.x the log is the notifications.
		for _, n := range []*netdatatest.Netdata{both, silenced} {
			// Ours must be quiet (their raises are asserted); the built-in
			// ones, whose raises are only recorded, CLEAR: the stock
			// audit_lost_events is not always CLEAR-notified.
			charts := map[string]string{}
			for name, chart := range watch {
				switch {
				case n == silenced && name == "audit_lost_events":
				case strings.HasPrefix(name, "audit_"):
					waitAlarm(t, &n.Host, chart+"."+name, alertWindow+3*alertEvery+10*time.Second, "CLEAR")
				default:
					charts[name] = chart
				}
			}
			waitQuietOn(t, n, charts, alertWindow+3*alertEvery+3*time.Minute)
			cursor[n] = latestID(t, &n.Host)
		}
		t.Logf("%s: every alert CLEAR", elapsed())
		before, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		t0 = time.Now()
		res = k.Overflow(2000)
		t1 = time.Now()
		after, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		stalled = after.BacklogWaitTimeActual - before.BacklogWaitTimeActual
		t.Logf("%s: incident: %d files in %v, backlog peak %d/1000, %d records lost, audited processes slept %.1f s",
			elapsed(), res.Files, res.LoadTime.Round(time.Millisecond), res.PeakBacklog, res.After.Lost-res.Before.Lost, float64(stalled)/float64(hz))
		if res.After.Lost == res.Before.Lost || stalled == 0 {
			t.Fatalf("the incident was not reproduced (lost %d -> %d, slept %d jiffies)", res.Before.Lost, res.After.Lost, stalled)
		}
		// A few seconds more for the backlog to drain while the charts watch.
		time.Sleep(5 * time.Second)
	})
	if !ok {
		return
	}

	// When each side's alerts rise (from the start of the load), on the
	// agent with both; ours on the silenced agent too.
	raisedAt := map[string]string{}
	deadline := time.Now().Add(alertWindow)
	for len(raisedAt) < len(watch) && time.Now().Before(deadline) {
		log, err := both.AlarmLog(cursor[both])
		if err == nil {
			for _, e := range log {
				if _, seen := raisedAt[e.Name]; !seen && watch[e.Name] != "" && (e.Status == "WARNING" || e.Status == "CRITICAL") {
					raisedAt[e.Name] = fmt.Sprintf("%s after %ds (%s)", e.Status, e.When-t0.Unix(), e.ValueString)
				}
			}
		}
		time.Sleep(time.Second)
	}
	for _, name := range []string{alertLost, alertUtil, alertStall} {
		e := waitLog(t, &both.Host, name, cursor[both], time.Second, "WARNING", "CRITICAL")
		waitNotified(t, both, e, 30*time.Second)
		e = waitLog(t, &silenced.Host, name, cursor[silenced], 30*time.Second, "WARNING", "CRITICAL")
		waitNotified(t, silenced, e, 30*time.Second)
	}

	// Gaps and values from the start of the load until 5 s after it ended.
	from, to := t0.Unix(), t1.Unix()+5
	var table strings.Builder
	fmt.Fprintf(&table, "| during the incident (%ds, %d s of which audited processes slept) | built-in (debugfs.plugin) | audit.plugin |\n|---|---|---|\n",
		to-from, stalled/uint32(hz))
	for _, c := range sideBySideCharts {
		var cells [2]string
		for i, side := range [][2]string{{c.builtin, c.builtinDim}, {c.ours, c.oursDim}} {
			d, err := both.DataRange(side[0], from, to)
			if err != nil {
				t.Fatal(err)
			}
			s, err := statsOf(d, side[1])
			if err != nil {
				t.Fatalf("%s: %v", side[0], err)
			}
			cells[i] = fmt.Sprintf("%d of %d s without a value (longest gap %d s); max %s %.4g", s.gaps, s.rows, s.longestGap, side[1], s.max)
			if i == 1 && s.gaps > 0 {
				t.Errorf("%s has %d gaps (longest %d s, first at %s) during the incident", side[0], s.gaps, s.longestGap, time.Unix(s.firstGapAt, 0).Format("15:04:05"))
			}
		}
		fmt.Fprintf(&table, "| %s / %s | %s | %s |\n", c.builtin, c.ours, cells[0], cells[1])
	}
	alert := func(name string) string {
		if v, ok := raisedAt[name]; ok {
			return name + " " + v
		}
		return name + " not raised within a minute"
	}
	fmt.Fprintf(&table, "| lost alert | %s | %s |\n", alert("audit_lost_events"), alert(alertLost))
	fmt.Fprintf(&table, "| utilization alert | %s (only in failure mode 2; here 1) | %s |\n", alert("audit_backlog_utilization"), alert(alertUtil))
	fmt.Fprintf(&table, "| stall alert | (none) | %s |\n", alert(alertStall))
	t.Logf("%s: side by side, %s, Netdata %s:\n%s", elapsed(), time.Now().UTC().Format("2006-01-02"), both.Version, table.String())

	// Coexistence: the silenced agent saw the same loss; audit_lost_events
	// was never raised nor notified there, ours was (checked above).
	if log, err := silenced.AlarmLog(0); err != nil {
		t.Error(err)
	} else if es := entriesOf(log, "audit_lost_events"); len(es) > 0 {
		t.Errorf("audit_lost_events ran on the agent with %q: %s", silenceBuiltinLost, describeLog(es))
	}
	if d, err := silenced.DataRange("audit.lost", from, to); err == nil {
		if s, err := statsOf(d, "lost"); err == nil {
			t.Logf("the silenced agent's audit.lost: max %g (the loss was there)", s.max)
		}
	}
	for _, x := range silenced.Notifications() {
		if strings.HasPrefix(x.Name, "audit_") && x.Name != "audit_backlog_utilization" {
			t.Errorf("the silenced agent notified %s %s", x.Name, x.Status)
		}
	}
	for _, n := range []*netdatatest.Netdata{both, silenced} {
		checkNoHealthErrors(t, n)
	}
}
