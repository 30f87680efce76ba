package e2e

// Lead times of the shipped alerts on gradual overloads, on the real kernel
// and a real Netdata 1.37 (issue 9): audit enabled, a narrow rule on a
// scratch directory, a paced load generator forked after audit was enabled,
// and a registered fake audit daemon that reads at a set rate below the
// generation rate, so the backlog grows in a straight line from empty to
// full. For each fill: the time the backlog passed 10 %, every alert's first
// WARNING and CRITICAL (Netdata's alarm log), and the first lost record (the
// kernel's lost counter). And the cases that must raise nothing: a burst to
// 30 % that drains within 2 s, and a backlog jittering between 0 and 5 %.
//
// The kernel is held (kerneltest lock) only while one case drives it; in
// between, the alerts of the previous fill (lost records and utilization
// look back a minute) must go CLEAR before the next fill starts. Set
// AUDITPLUGIN_LEADTIME_LONG=1 (make leadtime-long) to add a 10-minute fill.

import (
	"auditplugin/internal/netdatatest"
	"fmt"
	"math"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
)

const (
	ltLimit = 8192
	// recordsPerFile: what one `: > file` produces under the rule (SYSCALL,
	// CWD, two PATH, PROCTITLE, EOE less what the kernel merges); only used
	// to size the generator, the test measures the real rate.
	recordsPerFile = 4.5
	ltPoll         = 100 * time.Millisecond
)

type fillCase struct {
	name   string
	fill   time.Duration // empty to full at the starting growth rate
	slowAt float64       // fraction of the limit where growth slows to a third; 0: never
}

// fillResult is one row of the README's lead-time table; times are seconds
// after the growth started.
type fillResult struct {
	name                       string
	fill, cross10, half, lost  float64
	firstWarn, firstCrit       float64
	firstWarnBy, firstCritBy   string
	ttoWarn, ttoCrit, ttoClear float64
	drained                    float64
}

func (r fillResult) row() string {
	return fmt.Sprintf("| %s | %.0f s | %.1f s | %.0f s (%s) | %s | %.1f s | %s |",
		r.name, r.fill, r.cross10, r.firstWarn, strings.TrimPrefix(r.firstWarnBy, "linux_audit_"),
		critCell(r), r.lost, leadCell(r))
}

func critCell(r fillResult) string {
	if math.IsNaN(r.firstCrit) {
		return "none"
	}
	return fmt.Sprintf("%.0f s (%s)", r.firstCrit, strings.TrimPrefix(r.firstCritBy, "linux_audit_"))
}

func leadCell(r fillResult) string {
	s := fmt.Sprintf("WARNING %.0f s", r.lost-r.firstWarn)
	if !math.IsNaN(r.firstCrit) {
		s += fmt.Sprintf(", CRITICAL %.0f s", r.lost-r.firstCrit)
	}
	return s
}

var linuxAuditAlerts = []string{alertUtil, alertPanic, alertLost, alertStall, alertTTO, alertDaemon, alertNow}

func TestIntegrationLeadTime(t *testing.T) {
	netdatatest.RequireNetdata(t)
	kerneltest.RequireRoot(t)
	t.Parallel()
	n := netdatatest.Start(t, netdatatest.Options{PluginsDir: pluginDir(t, "cap_audit_control+ep"), HealthDir: shippedHealthDir(t), RunAsNetdata: true})
	h := &n.Host
	n.WaitChart(t, "linux_audit.time_to_overflow", 30*time.Second)
	// Every alert's first evaluation (a full minute of data for some), so
	// no first evaluation of the kernel's state before a case counts as a
	// raise in it.
	for _, name := range linuxAuditAlerts {
		waitLog(t, h, name, 0, alertWindow+alertEvery+30*time.Second, "CLEAR", "WARNING", "CRITICAL")
	}

	t.Run("no false alarms", func(t *testing.T) {
		waitAllClear(t, h, 3*time.Minute, false)
		noFalseAlarms(t, h)
	})

	cases := []fillCase{
		{name: "steady 30 s", fill: 30 * time.Second},
		{name: "steady 2 min", fill: 2 * time.Minute},
		{name: "slows to a third at 50 %", fill: time.Minute, slowAt: 0.5},
	}
	if os.Getenv("AUDITPLUGIN_LEADTIME_LONG") != "" {
		cases = append(cases, fillCase{name: "steady 10 min", fill: 10 * time.Minute})
	}
	var rows []string
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			waitAllClear(t, h, 3*time.Minute, false)
			r := runFill(t, h, c)
			rows = append(rows, r.row())
			t.Logf("%s", r.row())
			checkFill(t, c, r)
		})
	}
	t.Logf("lead times (%s, kernel %s):\n| fill | time to fill | 10 %% at | first WARNING | first CRITICAL | first lost record | lead |\n|---|---|---|---|---|---|---|\n%s",
		time.Now().UTC().Format("2006-01-02"), kernelRelease(), strings.Join(rows, "\n"))
	checkNoHealthErrors(t, n)
}

// checkFill asserts the targets of issue 9 point 1.
func checkFill(t *testing.T, c fillCase, r fillResult) {
	t.Helper()
	// Alarm log times are whole seconds, truncated: up to 1 s early.
	if math.IsNaN(r.firstWarn) || r.firstWarn > r.cross10+15 {
		t.Errorf("first linux_audit WARNING at %.0f s (%s), 10 %% at %.1f s: want it within 15 s", r.firstWarn, r.firstWarnBy, r.cross10)
	}
	if r.fill <= 600 && (math.IsNaN(r.ttoWarn) || r.ttoWarn > r.firstWarn) {
		t.Errorf("first WARNING by %s at %.0f s, time to overflow at %.0f s: want the time to overflow first", r.firstWarnBy, r.firstWarn, r.ttoWarn)
	}
	if r.fill >= 60 && (math.IsNaN(r.ttoCrit) || r.ttoCrit >= r.lost) {
		t.Errorf("time to overflow CRITICAL at %.0f s, first lost record at %.1f s: want it before", r.ttoCrit, r.lost)
	}
	// Drained: CLEAR at the next evaluations (every 5 s, data 1 s late).
	if math.IsNaN(r.ttoClear) || r.ttoClear > r.drained+12 {
		t.Errorf("time to overflow CLEAR at %.0f s, backlog under 10 %% again at %.1f s", r.ttoClear, r.drained)
	}
}

// runFill drives one gradual overload and reads back what Netdata raised.
func runFill(t *testing.T, h *netdatatest.Host, c fillCase) fillResult {
	k := kerneltest.Setup(t, kerneltest.Settings{Enabled: 1, BacklogLimit: ltLimit})
	// A healthy kernel first (audit enabled, a daemon reading everything),
	// then no alert may be raised: another test may have used the kernel
	// while this one waited for it. Without the daemon, the daemon-missing
	// alert such a test raised would stay raised.
	d := k.RegisterReadingDaemon(math.Inf(1))
	waitAllClear(t, h, 3*time.Minute, true)
	dir := k.ScratchDir()
	k.AddRule(dir, fmt.Sprintf("auditplugin-leadtime-%d", time.Now().UnixNano()))
	growth := ltLimit / c.fill.Seconds() // records/s
	g := startGenerator(k, dir, 2*growth, 3*c.fill+time.Minute)
	defer g.Stop()
	gen := measureGeneration(t, d)
	if gen < 1.3*growth {
		t.Fatalf("the generator makes %.0f records/s, the fill needs more than %.0f", gen, growth)
	}
	before, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	cursor := latestID(t, h)
	t0 := time.Now()
	d.SetRate(gen - growth)
	t.Logf("generation %.0f records/s, daemon reads %.0f: growth %.0f records/s (backlog %d, lost %d)", gen, gen-growth, growth, before.Backlog, before.Lost)

	r := fillResult{name: c.name, cross10: math.NaN(), half: math.NaN(), lost: math.NaN()}
	since := func() float64 { return time.Since(t0).Seconds() }
	slowed := false
	read := gen - growth
	var recent []counterSample // backlog samples of the last 5 s, to measure the growth
	deadline := t0.Add(3*c.fill + 30*time.Second)
	for math.IsNaN(r.lost) {
		st, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		at := since()
		if math.IsNaN(r.cross10) && st.Backlog >= ltLimit/10 {
			r.cross10 = at
		}
		if math.IsNaN(r.half) && st.Backlog >= ltLimit/2 {
			r.half = at
		}
		recent = append(recent, counterSample{time.Now(), st.Backlog})
		for len(recent) > 1 && time.Since(recent[0].at) > 5*time.Second {
			recent = recent[1:]
		}
		if c.slowAt > 0 && !slowed && float64(st.Backlog) >= c.slowAt*ltLimit {
			// The growth as measured, not as planned (the generator's rate
			// drifts with the machine's load): read two thirds of it more.
			first := recent[0]
			actual := (float64(st.Backlog) - float64(first.v)) / time.Since(first.at).Seconds()
			read += actual * 2 / 3
			d.SetRate(read)
			slowed = true
			t.Logf("%.1f s: backlog %d, growing %.0f records/s: the daemon now reads %.0f records/s more", at, st.Backlog, actual, actual*2/3)
		}
		if st.Lost != before.Lost {
			r.lost = at
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record lost after %.0f s (backlog %d/%d)", at, st.Backlog, ltLimit)
		}
		time.Sleep(ltPoll)
	}
	r.fill = r.lost
	t.Logf("10 %% at %.1f s, 50 %% at %.1f s, first lost record at %.1f s", r.cross10, r.half, r.lost)

	// Full for a few seconds (the lost alert is raised), then drain.
	time.Sleep(3 * time.Second)
	g.Stop()
	d.SetRate(math.Inf(1))
	for {
		st, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		if st.Backlog < ltLimit/10 {
			r.drained = since()
			break
		}
		if since() > r.lost+60 {
			t.Fatalf("backlog still %d a minute after the generator stopped", st.Backlog)
		}
		time.Sleep(ltPoll)
	}
	clear := waitLog(t, h, alertTTO, cursor, 30*time.Second, "CLEAR")
	r.ttoClear = float64(clear.When) - unixSeconds(t0)

	log, err := h.AlarmLog(cursor)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alarm log: %s", describeLog(log))
	r.firstWarn, r.firstCrit, r.ttoWarn, r.ttoCrit = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	for _, e := range log {
		at := float64(e.When) - unixSeconds(t0)
		if e.Status == "WARNING" || e.Status == "CRITICAL" {
			if math.IsNaN(r.firstWarn) || at < r.firstWarn || (at == r.firstWarn && e.Name == alertTTO) {
				r.firstWarn, r.firstWarnBy = at, e.Name
			}
			if e.Name == alertTTO && math.IsNaN(r.ttoWarn) {
				r.ttoWarn = at
			}
		}
		if e.Status == "CRITICAL" {
			if math.IsNaN(r.firstCrit) || at < r.firstCrit || (at == r.firstCrit && e.Name == alertTTO) {
				r.firstCrit, r.firstCritBy = at, e.Name
			}
			if e.Name == alertTTO && math.IsNaN(r.ttoCrit) {
				r.ttoCrit = at
			}
		}
	}
	return r
}

// startGenerator starts a paced generator of about rate records per second.
func startGenerator(k *kerneltest.Kernel, dir string, rate float64, d time.Duration) *kerneltest.Generator {
	filesPerSec := rate / recordsPerFile
	interval := 100 * time.Millisecond
	perBatch := int(math.Round(filesPerSec * interval.Seconds()))
	if perBatch < 1 {
		perBatch = 1
		interval = time.Duration(float64(time.Second) / filesPerSec)
	}
	return k.StartPaced(dir, perBatch, interval, d)
}

// measureGeneration is the generator's record rate, read by a daemon that
// keeps up.
func measureGeneration(t *testing.T, d *kerneltest.Daemon) float64 {
	t.Helper()
	time.Sleep(time.Second)
	r0, t0 := d.Read(), time.Now()
	time.Sleep(3 * time.Second)
	return float64(d.Read()-r0) / time.Since(t0).Seconds()
}

// noFalseAlarms: a burst to 30 % that drains within 2 s, then a backlog
// jittering between 0 and 5 % for a minute, raise no alert at all.
func noFalseAlarms(t *testing.T, h *netdatatest.Host) {
	const limit = 2048
	k := kerneltest.Setup(t, kerneltest.Settings{Enabled: 1, BacklogLimit: limit})
	d := k.RegisterReadingDaemon(math.Inf(1)) // before the wait: see runFill
	waitAllClear(t, h, 3*time.Minute, true)
	dir := k.ScratchDir()
	k.AddRule(dir, fmt.Sprintf("auditplugin-leadtime-burst-%d", time.Now().UnixNano()))
	time.Sleep(2 * time.Second)
	cursor := latestID(t, h)

	// Burst: the daemon pauses while ~40 % of the limit is generated at
	// once, then reads everything.
	d.SetRate(0)
	genDone := make(chan error, 1)
	files := int(math.Round(0.4 * limit / recordsPerFile))
	go func() { genDone <- k.Generate(files, dir) }()
	var peak uint32
	var over10 []time.Time // first and last sample above 10 %
	burstDeadline := time.Now().Add(10 * time.Second)
	released := false
	for time.Now().Before(burstDeadline) {
		st, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		peak = max(peak, st.Backlog)
		if st.Backlog > limit/10 {
			if len(over10) == 0 {
				over10 = append(over10, time.Now())
			}
			over10 = append(over10[:1], time.Now())
		}
		if !released && st.Backlog >= limit*3/10 {
			d.SetRate(math.Inf(1))
			released = true
		}
		if released && st.Backlog < limit/100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := <-genDone; err != nil {
		t.Fatal(err)
	}
	d.SetRate(math.Inf(1))
	var above time.Duration
	if len(over10) == 2 {
		above = over10[1].Sub(over10[0])
	}
	t.Logf("burst: peak %d/%d (%.0f %%), above 10 %% for %v", peak, limit, float64(peak)*100/limit, above.Round(10*time.Millisecond))
	if peak < limit*3/10 || above > 2*time.Second {
		t.Fatalf("the burst was not reproduced: peak %d, above 10 %% for %v", peak, above)
	}
	time.Sleep(20 * time.Second) // four evaluations of the time to overflow

	// Jitter: a paced generator, and a daemon that pauses up to 0.2 s at a
	// time (at most about 5 % of the limit accumulates), then catches up.
	g := startGenerator(k, dir, 300, 2*time.Minute)
	defer g.Stop()
	rng := rand.New(rand.NewSource(1))
	var jpeak uint32
	end := time.Now().Add(time.Minute)
	for time.Now().Before(end) {
		d.SetRate(0)
		pause := time.Now().Add(time.Duration(rng.Int63n(int64(200 * time.Millisecond))))
		for time.Now().Before(pause) {
			if st, err := kerneltest.ReadStatus(); err == nil {
				jpeak = max(jpeak, st.Backlog)
			}
			time.Sleep(20 * time.Millisecond)
		}
		d.SetRate(math.Inf(1))
		time.Sleep(200 * time.Millisecond)
	}
	g.Stop()
	t.Logf("jitter: peak %d/%d (%.1f %%) over a minute", jpeak, limit, float64(jpeak)*100/limit)
	if jpeak > limit*6/100 {
		t.Errorf("jitter went to %.1f %%, want at most about 5 %%", float64(jpeak)*100/limit)
	}
	time.Sleep(6 * time.Second) // the last evaluation saw the last jitter

	log, err := h.AlarmLog(cursor)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		if e.Status == "WARNING" || e.Status == "CRITICAL" {
			t.Errorf("raised by a burst or jitter: %s", describeLog([]netdatatest.AlarmLogEntry{e}))
		}
	}
}

// waitAllClear waits until no linux_audit alert is raised. Before the
// kernel is held, another test may keep raising them: then it only logs
// (the wait is repeated once the kernel is held, and must succeed then).
func waitAllClear(t *testing.T, h *netdatatest.Host, timeout time.Duration, must bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		alarms, _, err := h.Alarms()
		var loud []string
		for _, name := range linuxAuditAlerts {
			if a, ok := alarms[alertChart[name]+"."+name]; err != nil || !ok || a.Status != "CLEAR" {
				loud = append(loud, name+" "+a.Status)
			}
		}
		if len(loud) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if !must {
				t.Logf("alerts still raised after %v (another test's use of the kernel?): %v (err %v)", timeout, loud, err)
				return
			}
			t.Fatalf("alerts still raised after %v: %v (err %v)", timeout, loud, err)
		}
		time.Sleep(netdatatest.PollInterval)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
