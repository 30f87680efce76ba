package main

// Real-kernel tests of the built audit.plugin binary: root only (they skip
// otherwise, and under -short), one at a time machine-wide through
// kerneltest's lock. Each runs the binary as Netdata does and checks its
// stdout with checkStream. Run with:
//
//	go test -race -count=1 -run Integration -v ./plugin/
//
// A reset of the kernel's lost counter (auditctl --reset-lost) is not
// tested here: resetting is destructive and shared by every reader, so
// neither the plugin nor kerneltest ever does it. The sampler's unit tests
// (TestCountersSurviveReset) cover the plugin's handling of a reset.

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"auditplugin/host"
	"auditplugin/internal/kerneltest"
	"auditplugin/internal/testkit"
	"auditplugin/netlink"
)

const (
	chUtil      = "linux_audit.backlog_utilization"
	chBacklog   = "linux_audit.backlog"
	chLimit     = "linux_audit.backlog_limit"
	chLost      = "linux_audit.lost"
	chStall     = "linux_audit.backlog_wait_stall"
	chWaitTime  = "linux_audit.backlog_wait_time"
	chEnabled   = "linux_audit.enabled"
	chFailure   = "linux_audit.failure_mode"
	chDaemon    = "linux_audit.daemon"
	chRateLimit = "linux_audit.rate_limit"
	chLatency   = "linux_audit.query_latency"
	chHeld      = "linux_audit.queries_held"

	// fullBP is "the backlog is full": 95% in basis points, as the
	// kerneltest overflow sampler counts it.
	fullBP = 9500
)

// exporterFields maps every audit_status field that linux-audit-exporter
// exports to the chart and dimension where the plugin shows it.
var exporterFields = []struct{ field, chart, dim string }{
	{"backlog", chBacklog, "backlog"},
	{"backlog_limit", chLimit, "backlog_limit"},
	{"backlog_wait_time", chWaitTime, "backlog_wait_time"},
	{"backlog_wait_time_actual", chStall, "backlog_wait_stall"},
	{"enabled", chEnabled, "enabled_enabled"},
	{"failure", chFailure, "failure_printk"},
	{"lost", chLost, "lost"},
	{"rate_limit", chRateLimit, "rate_limit"},
}

func kernelHZ(t *testing.T) int {
	t.Helper()
	hz, err := host.KernelHZ()
	if err != nil {
		t.Skipf("CONFIG_HZ unknown here (%v): the wait-time charts would be in jiffies", err)
	}
	return hz
}

// cycleStatuses waits for cycles 1..n and reads the kernel independently
// as each one arrives.
func cycleStatuses(t *testing.T, p *pluginProc, n int) []kerneltest.Status {
	t.Helper()
	var out []kerneltest.Status
	for i := 1; i <= n; i++ {
		p.waitCycles(i, 5*time.Second)
		st, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatalf("ReadStatus: %v", err)
		}
		out = append(out, st)
	}
	return out
}

// compareWithKernel checks every value of the first len(sts) cycles of s
// against the kernel's status read when that cycle arrived.
func compareWithKernel(t *testing.T, s *stream, sts []kerneltest.Status, hz int) {
	t.Helper()
	get := func(chart, dim string, i int) (int64, bool) {
		vs := s.series(chart, dim)
		if i >= len(vs) {
			t.Errorf("cycle %d: no update of %s %s", i, chart, dim)
			return 0, false
		}
		if vs[i] == nil {
			t.Errorf("cycle %d: %s %s is a gap", i, chart, dim)
			return 0, false
		}
		return *vs[i], true
	}
	want := func(i int, chart, dim string, w int64) {
		t.Helper()
		if g, ok := get(chart, dim, i); ok && g != w {
			t.Errorf("cycle %d: %s %s = %d, the kernel says %d", i, chart, dim, g, w)
		}
	}
	b01 := func(b bool) int64 { return bool01(b) }
	// Jiffy charts carry seconds through the divisor: value/div seconds,
	// that is value*HZ/div jiffies.
	jiffies := func(i int, chart, dim string, w uint32) {
		t.Helper()
		c, ok := s.charts[chart]
		if !ok {
			t.Errorf("no chart %s", chart)
			return
		}
		d, _ := c.dim(dim)
		if d.div != int64(hz) {
			t.Errorf("%s %s divisor %d, want CONFIG_HZ %d", chart, dim, d.div, hz)
		}
		if g, ok := get(chart, dim, i); ok && (g*int64(hz)%d.div != 0 || g*int64(hz)/d.div != int64(w)) {
			t.Errorf("cycle %d: %s %s = %d/%d s = %d/%d jiffies, the kernel says %d jiffies", i, chart, dim, g, d.div, g*int64(hz), d.div, w)
		}
	}
	base := sts[0]
	for i, st := range sts {
		want(i, chLimit, "backlog_limit", int64(st.BacklogLimit))
		want(i, chLimit, "backlog_unlimited", b01(st.BacklogLimit == 0))
		want(i, chBacklog, "backlog", int64(st.Backlog))
		if st.BacklogLimit > 0 {
			want(i, chUtil, "utilization", int64(st.Backlog)*10000/int64(st.BacklogLimit))
		}
		want(i, chEnabled, "enabled_disabled", b01(st.Enabled == 0))
		want(i, chEnabled, "enabled_enabled", b01(st.Enabled == 1))
		want(i, chEnabled, "enabled_immutable", b01(st.Enabled == 2))
		want(i, chFailure, "failure_silent", b01(st.Failure == 0))
		want(i, chFailure, "failure_printk", b01(st.Failure == 1))
		want(i, chFailure, "failure_panic", b01(st.Failure == 2))
		want(i, chRateLimit, "rate_limit", int64(st.RateLimit))
		want(i, chDaemon, "daemon_registered", b01(st.PID != 0))
		want(i, chDaemon, "daemon_running", b01(st.PID != 0 && procExists(st.PID)))
		jiffies(i, chWaitTime, "backlog_wait_time", st.BacklogWaitTime)
		// The counters are charted from the plugin's first sample on (the
		// charts are incremental): their increase must follow the kernel's.
		want(i, chLost, "lost", int64(st.Lost-base.Lost)+first(s, chLost, "lost"))
		jiffies(i, chStall, "backlog_wait_stall", st.BacklogWaitTimeActual-base.BacklogWaitTimeActual+uint32(first(s, chStall, "backlog_wait_stall")))
	}
}

// first is the first value of a dimension, 0 when there is none.
func first(s *stream, chart, dim string) int64 {
	if vs := s.series(chart, dim); len(vs) > 0 && vs[0] != nil {
		return *vs[0]
	}
	return 0
}

// checkExporterFields: each field is on a chart, with a value in every cycle.
func checkExporterFields(t *testing.T, s *stream) {
	t.Helper()
	for _, f := range exporterFields {
		c, ok := s.charts[f.chart]
		if !ok {
			t.Errorf("exporter field %s: no chart %s", f.field, f.chart)
			continue
		}
		if _, ok := c.dim(f.dim); !ok {
			t.Errorf("exporter field %s: chart %s has no dimension %s", f.field, f.chart, f.dim)
			continue
		}
		vs := s.series(f.chart, f.dim)
		if len(vs) == 0 {
			t.Errorf("exporter field %s: %s %s never updated", f.field, f.chart, f.dim)
		}
		for i, v := range vs {
			if v == nil {
				t.Errorf("exporter field %s: %s %s is a gap in cycle %d", f.field, f.chart, f.dim, i)
			}
		}
	}
}

// stopAndCheck stops p and checks it exited 0 with a valid stream.
func stopAndCheck(t *testing.T, p *pluginProc, timeout time.Duration) *stream {
	t.Helper()
	p.stop(timeout)
	if c := p.exitCode(); c != 0 {
		t.Errorf("%s exit code %d after SIGTERM (%v); stderr:\n%s", p.name, c, p.waitErr, p.stderr)
	}
	s := checkStream(t, p.output())
	if s.disabled {
		t.Errorf("%s sent DISABLE; stderr:\n%s", p.name, p.stderr)
	}
	return s
}

// TestIntegrationOutputMatchesKernel runs audit.plugin 1 on a quiet kernel
// and compares every charted value with an independent AUDIT_GET
// (kerneltest.ReadStatus) read as each cycle arrives.
func TestIntegrationOutputMatchesKernel(t *testing.T) {
	kerneltest.Lock(t)
	exe := pluginBinary(t)
	hz := kernelHZ(t)
	p := newPluginProc(t, "audit.plugin 1", time.Second)
	p.start(nil, exe, "1")
	const n = 4
	sts := cycleStatuses(t, p, n)
	s := checkStream(t, p.completeOutput())
	compareWithKernel(t, s, sts, hz)
	checkExporterFields(t, s)
	stopAndCheck(t, p, 10*time.Second)
	t.Logf("kernel: %v", sts[n-1])
}

// TestIntegrationOutputShowsSettings sets every audit setting the plugin
// charts to an unusual value and checks the plugin shows exactly those.
func TestIntegrationOutputShowsSettings(t *testing.T) {
	kerneltest.RequireRoot(t)
	exe := pluginBinary(t)
	hz := kernelHZ(t)
	p := newPluginProc(t, "audit.plugin 1", time.Second)
	want := kerneltest.Settings{Enabled: 1, BacklogLimit: 777, RateLimit: 5, BacklogWaitTime: 123}
	k := kerneltest.Setup(t, want)
	k.RegisterStalledDaemon()
	p.start(nil, exe, "1")
	const n = 3
	sts := cycleStatuses(t, p, n)
	s := checkStream(t, p.completeOutput())
	compareWithKernel(t, s, sts, hz)
	checkExporterFields(t, s)

	d, _ := s.charts[chWaitTime].dim("backlog_wait_time")
	exact := []struct {
		chart, dim string
		want       int64
	}{
		{chLimit, "backlog_limit", 777},
		{chLimit, "backlog_unlimited", 0},
		{chRateLimit, "rate_limit", 5},
		{chWaitTime, "backlog_wait_time", 123 * d.div / int64(hz)},
		{chEnabled, "enabled_disabled", 0},
		{chEnabled, "enabled_enabled", 1},
		{chEnabled, "enabled_immutable", 0},
		{chDaemon, "daemon_registered", 1},
		{chDaemon, "daemon_running", 1}, // the stalled daemon is this test process
	}
	for _, e := range exact {
		vs := s.series(e.chart, e.dim)
		for i, v := range vs[:min(n, len(vs))] {
			if v == nil || *v != e.want {
				t.Errorf("cycle %d: %s %s = %s, want %d", i, e.chart, e.dim, seriesString([]*int64{v}), e.want)
			}
		}
	}
	if st := sts[n-1]; st.PID != uint32(os.Getpid()) {
		t.Errorf("kernel daemon pid %d, want this test process %d", st.PID, os.Getpid())
	}
	stopAndCheck(t, p, 10*time.Second)
	t.Logf("kernel: %v", sts[n-1])
}

// rates are the per-second increases of an incremental dimension between
// successive cycles, with the interval Netdata would use (BEGIN's
// microseconds), and the index of the later cycle.
func rates(s *stream, chart, dim string) map[int]float64 {
	out := map[int]float64{}
	var prev *int64
	i := 0
	for _, u := range s.updates {
		if u.chart != chart {
			continue
		}
		v := u.values[dim]
		if v != nil && prev != nil && u.since > 0 {
			out[i] = float64(*v-*prev) / (float64(u.since) / 1e6)
		}
		if v != nil {
			prev = v
		}
		i++
	}
	return out
}

func maxValue(m map[int]int64) (idx int, v int64) {
	idx, v = -1, -1
	for i, x := range m {
		if x > v || (x == v && i < idx) {
			idx, v = i, x
		}
	}
	return idx, v
}

// TestIntegrationOverflowIncident reproduces the incident (a 1,000-record
// backlog, a daemon that does not read, 3,000 audited file creations) under
// audit.plugin 1: the output must show the full backlog and the lost records.
func TestIntegrationOverflowIncident(t *testing.T) {
	kerneltest.RequireRoot(t)
	exe := pluginBinary(t)
	p := newPluginProc(t, "audit.plugin 1", time.Second)
	k := kerneltest.Setup(t, kerneltest.OverflowSettings())
	p.start(nil, exe, "1")
	p.waitCycles(2, 5*time.Second)
	res := k.Overflow(0)
	t.Logf("overflow: %d files in %v, full (>=95%%) after %v, peak backlog %d, lost %d -> %d (+%d)",
		res.Files, res.LoadTime.Round(time.Millisecond), res.FillTime.Round(time.Millisecond), res.PeakBacklog,
		res.Before.Lost, res.After.Lost, res.After.Lost-res.Before.Lost)
	p.waitCycles(p.cycles()+3, 6*time.Second)
	s := checkStream(t, p.completeOutput())

	t.Logf("utilization last (bp): %s", seriesString(s.series(chUtil, "utilization")))
	t.Logf("utilization peak (bp): %s", seriesString(s.series(chUtil, "utilization_peak")))
	t.Logf("backlog peak:          %s", seriesString(s.series(chBacklog, "backlog_peak")))
	t.Logf("lost (cumulative):     %s", seriesString(s.series(chLost, "lost")))
	if i, peak := maxValue(values(s, chUtil, "utilization_peak")); peak < fullBP {
		t.Errorf("utilization peak never reached %d bp (highest %d in cycle %d); the kernel's own sampler saw a backlog of %d of %d",
			fullBP, peak, i, res.PeakBacklog, kerneltest.OverflowSettings().BacklogLimit)
	} else {
		t.Logf("utilization peak %d bp in cycle %d", peak, i)
	}
	lostRates := rates(s, chLost, "lost")
	var best float64
	for i, r := range lostRates {
		if r > 0 {
			t.Logf("lost rate %.0f records/s in cycle %d", r, i)
		}
		best = max(best, r)
	}
	if best <= 0 {
		t.Errorf("the lost rate never rose above 0: %v", lostRates)
	}
	// The plugin counts every record lost since its first sample, which
	// came before the overflow started.
	if vs := values(s, chLost, "lost"); len(vs) > 0 {
		_, total := maxValue(vs)
		if want := int64(res.After.Lost - res.Before.Lost); total < want {
			t.Errorf("plugin counted %d lost records, the kernel lost %d during the overflow alone", total, want)
		}
	}
	stopAndCheck(t, p, 10*time.Second)
}

// TestIntegrationSurgeBetweenUpdates: at update_every 5 a surge that fills
// the backlog for well under a second must still show as a peak, while
// the last value of that interval can have dropped again.
func TestIntegrationSurgeBetweenUpdates(t *testing.T) {
	kerneltest.RequireRoot(t)
	exe := pluginBinary(t)
	p := newPluginProc(t, "audit.plugin 5", 5*time.Second)
	k := kerneltest.Setup(t, kerneltest.OverflowSettings())
	p.start(nil, exe, "5")
	p.waitCycles(1, 12*time.Second)
	n := p.cycles()
	res := k.Overflow(0)
	t.Logf("surge: %d files in %v, full (>=95%%) after %v, peak backlog %d (kernel sampler), lost +%d",
		res.Files, res.LoadTime.Round(time.Millisecond), res.FillTime.Round(time.Millisecond), res.PeakBacklog, res.After.Lost-res.Before.Lost)
	p.waitCycles(n+2, 12*time.Second)
	s := checkStream(t, p.completeOutput())
	last, peak := s.series(chUtil, "utilization"), s.series(chUtil, "utilization_peak")
	t.Logf("utilization last (bp): %s", seriesString(last))
	t.Logf("utilization peak (bp): %s", seriesString(peak))
	t.Logf("backlog last:          %s", seriesString(s.series(chBacklog, "backlog")))
	t.Logf("backlog peak:          %s", seriesString(s.series(chBacklog, "backlog_peak")))
	i, pk := maxValue(values(s, chUtil, "utilization_peak"))
	switch {
	case pk < fullBP || pk > 11000:
		t.Errorf("highest utilization peak %d bp (cycle %d), want 9500..11000", pk, i)
	default:
		l := "a gap"
		if i < len(last) && last[i] != nil {
			l = strconv.FormatInt(*last[i], 10) + " bp"
		}
		t.Logf("cycle %d (update_every 5): peak %d bp, last %s", i, pk, l)
	}
	stopAndCheck(t, p, 15*time.Second)
}

// generateEvery starts, every period until stop is closed, a new audited
// process making n events in dir, each tracked by load: with a low backlog
// limit this keeps the backlog over it. A generator fails when the restore
// kills it.
func generateEvery(load *sync.WaitGroup, stop <-chan struct{}, period time.Duration, k *kerneltest.Kernel, n int, dir string) {
	load.Add(1)
	go func() {
		defer load.Done()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			load.Add(1)
			go func() { defer load.Done(); _ = k.Generate(n, dir) }()
		}
	}()
}

// TestIntegrationStall holds the backlog over a small limit with
// backlog_wait_time 20 s, so the kernel puts every audited process and
// every sender of an audit netlink message, the plugin's AUDIT_GET
// included, to sleep for up to 20 s. The plugin must keep its one-second
// cycles, show the full backlog and the penalty, and stay within its thread
// bound.
//
// What keeps the backlog over its limit (measured here, HZ 250): with only
// long-running load generators, the backlog stays full for about 5 s, then
// kauditd moves the queue to its retry/hold queues and every generator
// sleeps out its 20 s, with the backlog at 0. A new audited process forked
// every 200 ms refills it within that time whenever it drops.
func TestIntegrationStall(t *testing.T) {
	const (
		limit       = 500
		waitJiffies = 5000 // 20 s at HZ 250
		stallFor    = 30 * time.Second
		boundedHeld = 4
		// Threads of the plugin besides its held senders: the Go runtime's
		// (main, sysmon, GC workers, a spare), the netlink receiver and the
		// stdin reader, each blocked in a system call.
		threadSlack = 16
		maxRSSKB    = 64 << 10
		maxGap      = 2 * time.Second
	)
	kerneltest.RequireRoot(t)
	exe := pluginBinary(t)
	dir := t.TempDir() // removed after the restore deleted the rule on it
	var load sync.WaitGroup
	t.Cleanup(load.Wait) // after the restore killed the generators

	// Stopped after the restore (cleanups run in reverse): a plugin thread
	// the kernel holds asleep keeps the process until it wakes.
	var afterStop []func()
	t.Cleanup(func() {
		for _, f := range afterStop {
			f()
		}
	})
	dflt := newPluginProc(t, "audit.plugin 1", time.Second)
	bounded := newPluginProc(t, fmt.Sprintf("audit.plugin 1 -max-held-queries %d", boundedHeld), time.Second)
	var beforeStop []func() // after the restore, before the plugins stop
	t.Cleanup(func() {
		for _, f := range beforeStop {
			f()
		}
	})

	k := kerneltest.Setup(t, kerneltest.Settings{Enabled: 1, BacklogLimit: limit, BacklogWaitTime: waitJiffies})
	stop := make(chan struct{})
	t.Cleanup(func() {
		// Runs before the restore. End the stall first: the restore's first
		// step reads the status, and while that send sleeps in the kernel
		// (sender penalty, up to 20 s) kerneltest's socket sends nothing
		// else (conn.sendMu), so its backlog_wait_time=0 and enabled=0
		// requests time out ("no answer from the kernel audit subsystem")
		// and the restore reports failure. Set sends backlog_wait_time=0
		// first, which no penalty holds.
		close(stop)
		k.Set(kerneltest.Settings{Enabled: 1, BacklogLimit: limit})
	})
	k.AddRule(dir, fmt.Sprintf("auditplugin-stall-%d", os.Getpid()))
	k.RegisterStalledDaemon()
	dflt.start(nil, exe, "1")
	bounded.start(nil, exe, "1", "-max-held-queries", strconv.Itoa(boundedHeld))
	dflt.waitCycles(2, 5*time.Second)
	bounded.waitCycles(2, 5*time.Second)

	// Load: long generators, and a new short one every 200 ms.
	generate := func(n int) {
		defer load.Done()
		_ = k.Generate(n, dir) // fails when the restore kills it
	}
	for range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				load.Add(1)
				generate(100000)
			}
		}()
	}
	generateEvery(&load, stop, 200*time.Millisecond, k, 2*limit, dir)

	// The stall starts when the plugin first shows a full backlog.
	loadStart := time.Now()
	var stallStart time.Time
	for stallStart.IsZero() {
		if time.Since(loadStart) > 20*time.Second {
			st, err := kerneltest.ReadStatus()
			t.Fatalf("the plugin showed no full backlog 20 s into the load (kernel now: %v, %v); stderr:\n%s", st, err, dflt.stderr)
		}
		dflt.waitCycles(dflt.cycles()+1, 5*time.Second)
		s, _ := validateStream(dflt.completeOutput())
		for _, v := range values(s, chUtil, "utilization") {
			if v >= fullBP {
				stallStart = time.Now()
			}
		}
	}
	t.Logf("backlog full %v after the load started; stalling for %v", stallStart.Sub(loadStart).Round(time.Millisecond), stallFor)
	for time.Since(stallStart) < stallFor {
		dflt.waitCycles(dflt.cycles()+1, 5*time.Second)
		bounded.waitCycles(bounded.cycles()+1, 5*time.Second)
	}

	// The stall, as the plugins charted it.
	checkRun := func(p *pluginProc, maxThreads int) (*stream, []time.Time) {
		t.Helper()
		out, arr := p.snapshot()
		s := checkStream(t, out)
		g := gaps(arr)
		t.Logf("%s: %d cycles, gaps (s): %s", p.name, len(arr), durationsString(g))
		if m := maxDuration(g); m > maxGap {
			t.Errorf("%s: a cycle came %v after the previous one, want every cycle within %v", p.name, m.Round(time.Millisecond), maxGap)
		}
		th, rss := maxProc(p.procSamples())
		t.Logf("%s: at most %d threads, %d KiB resident", p.name, th, rss)
		if th > maxThreads {
			t.Errorf("%s: %d threads, want at most %d", p.name, th, maxThreads)
		}
		if rss > maxRSSKB {
			t.Errorf("%s: %d KiB resident, want at most %d", p.name, rss, maxRSSKB)
		}
		for _, c := range []struct{ chart, dim string }{
			{chUtil, "utilization"}, {chUtil, "utilization_peak"}, {chBacklog, "backlog"},
			{chHeld, "queries_held"}, {chLatency, "query_held_for"}, {chLatency, "query_reply"}, {chStall, "backlog_wait_stall"},
		} {
			t.Logf("%s: %s %s: %s", p.name, c.chart, c.dim, seriesString(s.series(c.chart, c.dim)))
		}
		return s, arr
	}
	s, arr := checkRun(dflt, netlink.DefaultMaxSenders+threadSlack)
	firstStall := 0 // the first cycle of the stall
	for firstStall < len(arr) && arr[firstStall].Before(stallStart.Add(-time.Second)) {
		firstStall++
	}
	util := s.series(chUtil, "utilization")
	// With free senders, every cycle of the stall has a fresh sample.
	for _, c := range []struct{ chart, dim string }{{chUtil, "utilization"}, {chLatency, "query_reply"}} {
		for i, v := range s.series(c.chart, c.dim) {
			if i >= firstStall && v == nil {
				t.Errorf("%s: cycle %d of the stall has no sample (%s %s is a gap)", dflt.name, i, c.chart, c.dim)
			}
		}
	}
	run, best := 0, 0
	for i := firstStall; i < len(util); i++ {
		if util[i] != nil && *util[i] >= fullBP {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	t.Logf("%s: longest run of cycles with the last utilization >= %d bp: %d", dflt.name, fullBP, best)
	if best < 3 {
		t.Errorf("%s: no three consecutive cycles with the last utilization >= %d bp during the stall", dflt.name, fullBP)
	}
	_, held := maxValue(values(s, chHeld, "queries_held"))
	_, heldFor := maxValue(values(s, chLatency, "query_held_for"))
	t.Logf("%s: at most %d queries held at once; longest hold %v", dflt.name, held, time.Duration(heldFor)*time.Microsecond)
	if held <= 0 && heldFor < time.Second.Microseconds() {
		t.Errorf("%s: the penalty never showed: queries_held %d, longest hold %v", dflt.name, held, time.Duration(heldFor)*time.Microsecond)
	}
	stallRates := rates(s, chStall, "backlog_wait_stall")
	var stalled float64
	for _, r := range stallRates {
		stalled = max(stalled, r)
	}
	hz := float64(kernelHZ(t))
	t.Logf("%s: highest backlog wait stall %.1f s/s", dflt.name, stalled/hz)
	if stalled <= 0 {
		t.Errorf("%s: the backlog wait stall rate never rose above 0", dflt.name)
	}

	bs, _ := checkRun(bounded, boundedHeld+threadSlack)
	_, bheld := maxValue(values(bs, chHeld, "queries_held"))
	t.Logf("%s: at most %d queries held at once", bounded.name, bheld)
	if bheld > boundedHeld {
		t.Errorf("%s: %d queries held at once, above its bound %d", bounded.name, bheld, boundedHeld)
	}

	// After the restore: both plugins exit cleanly, with every cycle of
	// their whole run (through the restore) within maxGap.
	beforeStop = append(beforeStop, func() {
		restored := time.Now()
		st, err := kerneltest.ReadStatus()
		if err != nil {
			t.Errorf("ReadStatus after the restore: %v", err)
		}
		t.Logf("restored: %v", st)
		for _, p := range []*pluginProc{dflt, bounded} {
			n := p.cycles()
			deadline := time.Now().Add(3*time.Second + 2*maxGap)
			for p.cycles() < n+3 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if p.cycles() < n+3 {
				arr := p.arrivalTimes()
				t.Errorf("%s: %d cycles in the %v after the restore, want 3; the last came %v before the restore ended; threads:\n%s",
					p.name, p.cycles()-n, time.Since(restored).Round(time.Millisecond), restored.Sub(arr[len(arr)-1]).Round(time.Millisecond), p.threadStates())
			}
		}
		// The unbounded plugin has free senders: it shows the restored
		// state. The lock is free again by now (kerneltest releases it right
		// after the restore), so another test may have changed the kernel.
		s, _ := validateStream(dflt.completeOutput())
		if now, err := kerneltest.ReadStatus(); err != nil || now.BacklogLimit != st.BacklogLimit || now.Enabled != st.Enabled {
			t.Logf("the kernel changed after the restore (now %v, %v): not comparing", now, err)
			return
		}
		for _, c := range []struct {
			chart, dim string
			want       int64
		}{{chLimit, "backlog_limit", int64(st.BacklogLimit)}, {chEnabled, "enabled_enabled", bool01(st.Enabled == 1)}} {
			vs := s.series(c.chart, c.dim)
			if len(vs) == 0 || vs[len(vs)-1] == nil || *vs[len(vs)-1] != c.want {
				t.Errorf("%s after the restore: %s %s = %s, want %d", dflt.name, c.chart, c.dim, seriesString(vs[max(0, len(vs)-3):]), c.want)
			}
		}
	})
	afterStop = append(afterStop, func() {
		for _, p := range []*pluginProc{dflt, bounded} {
			stopAndCheck(t, p, 45*time.Second)
			g := p.runGaps()
			t.Logf("%s: whole run %d cycles, longest gap (up to SIGTERM) %v", p.name, p.cycles(), maxDuration(g).Round(time.Millisecond))
			if m := maxDuration(g); m > maxGap {
				t.Errorf("%s: a cycle came %v after the previous one during the restore", p.name, m.Round(time.Millisecond))
			}
			th, rss := maxProc(p.procSamples())
			t.Logf("%s: whole run at most %d threads, %d KiB resident", p.name, th, rss)
		}
	})
}

// capabilityCopy copies exe into a directory nobody can read and gives the
// copy cap_audit_control+ep, as install.sh does.
func capabilityCopy(t *testing.T, exe string) string {
	t.Helper()
	capExe := testkit.CopyForOthers(t, exe, "audit.plugin")
	if out, err := exec.Command("setcap", "cap_audit_control+ep", capExe).CombinedOutput(); err != nil {
		t.Skipf("setcap on %s: %v: %s", capExe, err, out)
	}
	if out, err := exec.Command("getcap", capExe).CombinedOutput(); err == nil {
		t.Logf("getcap: %s", strings.TrimSpace(string(out)))
	}
	return capExe
}

// runToExit runs the plugin through wrapper (run as nobody, ...) and waits
// up to 10 s for it to exit on its own, as a plugin that disables itself
// must; one still running then is killed and fails the test.
func runToExit(t *testing.T, wrapper []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out strings.Builder
	errOut := &syncBuffer{}
	cmd := exec.Command(wrapper[0], append(wrapper[1:len(wrapper):len(wrapper)], args...)...)
	cmd.Stdout, cmd.Stderr = &out, errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("still running after 10 s; stdout:\n%s", out.String())
	}
	t.Logf("exit: %v; stderr: %s", err, strings.TrimSpace(errOut.String()))
	return out.String(), errOut.String(), err
}

// TestIntegrationUnprivileged runs the binary as nobody: without
// CAP_AUDIT_CONTROL it must disable itself and say how to grant the
// capability; with the file capability set it must chart.
func TestIntegrationUnprivileged(t *testing.T) {
	kerneltest.Lock(t)
	exe := pluginBinary(t)
	for _, tool := range []string{"setpriv", "setcap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	nobody := testkit.AsNobody()
	if out, err := exec.Command(nobody[0], append(nobody[1:], "true")...).CombinedOutput(); err != nil {
		t.Skipf("setpriv does not work here: %v: %s", err, out)
	}

	t.Run("no capability", func(t *testing.T) {
		stdout, stderr, err := runToExit(t, nobody, exe, "1")
		if err == nil {
			t.Errorf("exited 0, want non-zero")
		}
		s := checkStream(t, stdout)
		if !s.disabled || len(s.charts) > 0 {
			t.Errorf("stdout %q, want DISABLE and no charts", stdout)
		}
		if !strings.Contains(stderr, "setcap cap_audit_control+ep") {
			t.Errorf("stderr does not name 'setcap cap_audit_control+ep':\n%s", stderr)
		}
	})

	t.Run("file capability", func(t *testing.T) {
		capExe := capabilityCopy(t, exe)
		p := newPluginProc(t, "audit.plugin 1 as nobody with cap_audit_control+ep", time.Second)
		p.start(nobody, capExe, "1")
		sts := cycleStatuses(t, p, 2)
		if st, err := testkit.ReadProcStatus(p.pid); err == nil {
			t.Logf("plugin Uid: %s, CapEff: %s", st["Uid"], st["CapEff"])
			if f := strings.Fields(st["Uid"]); len(f) > 1 && f[1] != "65534" {
				t.Errorf("plugin runs with euid %s, want 65534", f[1])
			}
		}
		s := stopAndCheck(t, p, 10*time.Second)
		if len(s.charts) == 0 {
			t.Fatalf("no charts; stderr:\n%s", p.stderr)
		}
		compareWithKernel(t, s, sts, kernelHZ(t))
	})
}
