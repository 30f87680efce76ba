package e2e

import (
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/netlink"
)

// replayStep is the plugin's default -sample-interval: it takes one
// replayed status per sample.
const replayStep = 250 * time.Millisecond

// The recorded incident the replay test shows Netdata, in seconds.
const (
	replayQuiet = 70  // backlog at 1 %: a full first window for every alert
	replayRamp  = 100 // backlog rising steadily from 1 % to 100 %
	replayFull  = 5   // full, and the kernel losing 100 records a second
	replayLow   = 300 // backlog at 1 % again, until the test ends
)

// writePanicReplay writes the incident as the kernel would report it in
// failure mode 2, one netlink.Status per sample as JSON lines, and returns
// the file. Each status is a 44-byte reply (Linux 5.9+) with a registered
// audit daemon whose process exists (pid 1).
func writePanicReplay(t *testing.T, dir string) string {
	t.Helper()
	const limit = 1000
	perSec := int(time.Second / replayStep)
	st := netlink.Status{
		Enabled:         netlink.Enabled,
		Failure:         netlink.FailurePanic,
		PID:             1,
		BacklogLimit:    limit,
		FeatureBitmap:   0x7f,
		BacklogWaitTime: 15000,
		Fields:          netlink.FieldFeatureBitmap | netlink.FieldBacklogWaitTime | netlink.FieldBacklogWaitTimeActual,
		ReplyBytes:      44,
	}
	var out []byte
	add := func(backlog, lost uint32) {
		st.Backlog, st.Lost = backlog, lost
		b, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		out = append(append(out, b...), '\n')
	}
	for range replayQuiet * perSec {
		add(10, 0)
	}
	ramp := replayRamp * perSec
	for i := 1; i <= ramp; i++ {
		add(uint32(10+(limit-10)*i/ramp), 0)
	}
	lost := uint32(0)
	for range replayFull * perSec {
		lost += 100 / uint32(perSec)
		add(limit, lost)
	}
	for range replayLow * perSec {
		add(10, lost)
	}
	path := filepath.Join(dir, "panic-incident.jsonl")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestIntegrationAlertsPanicModeReplay proves the failure-mode-2 alert
// without ever setting failure mode 2: a mode this machine must never enter,
// since the first lost record panics it.
//
// How: the plugin runs with -replay of a recorded incident in failure mode 2
// (writePanicReplay). -replay swaps only the source of the statuses; they
// go through the same sampling, charts and plugins.d output as the kernel's
// (the plugin copy here has no capability and runs as user netdata, so it
// could not even read the kernel). Netdata, with the alert file exactly as
// shipped, thus sees exactly what it would see on a host in failure mode 2
// (linux_audit.failure_mode panic = 1), and the test checks what it does:
//
//   - backlog at 1 % in panic mode: linux_audit_panic_mode_backlog CLEAR, so
//     a host that runs -f 2 by policy is not paged;
//   - rising past 25 %: WARNING, before the utilization alert (50 %) — the
//     cross-chart ${linux_audit.failure_mode.panic} is resolved (an unknown
//     variable would be false, and the alert would never fire);
//   - past 50 %: CRITICAL; full with records lost: the lost alert too;
//   - low again: every alert CLEAR, and every transition notified.
//
// TestIntegrationAlertsKernelOverflow is the counterpart: at 100 % in
// failure mode 1 the panic-mode alert stays CLEAR.
//
// The same steady growth drives linux_audit_time_to_overflow: WARNING (under
// 10 minutes), CRITICAL (under 1 minute), CLEAR once it stops growing.
func TestIntegrationAlertsPanicModeReplay(t *testing.T) {
	netdatatest.RequireNetdata(t)
	t.Parallel()
	if st, err := kerneltest.ReadStatus(); err == nil {
		if st.Failure == 2 {
			t.Fatal("this machine's audit failure mode is 2")
		}
		t.Logf("this machine's audit failure mode is %d; the replay shows Netdata failure mode 2", st.Failure)
	}
	// A test build with -replay (build tag replay), no capability: it
	// cannot read the kernel.
	dir, err := netdatatest.PluginDir(t, testkit.BuildPlugin(t, "-tags", "replay"), "")
	if err != nil {
		t.Fatal(err)
	}
	replay := writePanicReplay(t, dir)
	n := netdatatest.Start(t, netdatatest.Options{
		PluginsDir:    dir,
		HealthDir:     shippedHealthDir(t),
		RunAsNetdata:  true,
		PluginOptions: map[string]string{"audit": "-replay " + replay},
	})
	start := time.Now()
	elapsed := func() string { return time.Since(start).Round(time.Second).String() }
	h := &n.Host

	n.WaitChart(t, "linux_audit.backlog_utilization", 30*time.Second)
	d := n.WaitChart(t, "linux_audit.failure_mode", 10*time.Second)
	if v, ok := d.Latest("panic"); !ok || v != 1 {
		t.Fatalf("linux_audit.failure_mode panic = %v (%v), want 1 from the replay", v, ok)
	}

	// Failure mode 2 with the backlog at 1 %: every alert's first evaluation
	// is CLEAR.
	first := map[string]netdatatest.AlarmLogEntry{}
	for _, name := range []string{alertPanic, alertUtil, alertLost, alertStall, alertTTO, alertDaemon} {
		e := waitLog(t, h, name, 0, replayQuiet*time.Second+alertEvery+20*time.Second, "CLEAR", "WARNING", "CRITICAL")
		if e.Status != "CLEAR" {
			t.Fatalf("%s first evaluated %s->%s (%s) at 1 %% in panic mode", name, e.OldStatus, e.Status, e.ValueString)
		}
		first[name] = e
	}
	t.Logf("%s: every alert CLEAR at 1 %% in panic mode (%s %s)", elapsed(), alertPanic, first[alertPanic].ValueString)

	rampWait := (replayRamp+replayFull)*time.Second + 2*alertEvery + 20*time.Second
	panicWarn := waitLog(t, h, alertPanic, first[alertPanic].UniqueID, rampWait, "WARNING", "CRITICAL")
	panicCrit := waitLog(t, h, alertPanic, panicWarn.UniqueID, rampWait, "CRITICAL")
	utilWarn := waitLog(t, h, alertUtil, first[alertUtil].UniqueID, rampWait, "WARNING", "CRITICAL")
	utilCrit := waitLog(t, h, alertUtil, utilWarn.UniqueID, rampWait, "CRITICAL")
	ttoWarn := waitLog(t, h, alertTTO, first[alertTTO].UniqueID, rampWait, "WARNING", "CRITICAL")
	ttoCrit := waitLog(t, h, alertTTO, ttoWarn.UniqueID, rampWait, "CRITICAL")
	lostWarn := waitLog(t, h, alertLost, first[alertLost].UniqueID, rampWait, "WARNING", "CRITICAL")
	raised := []netdatatest.AlarmLogEntry{panicWarn, panicCrit, utilWarn, utilCrit, ttoWarn, ttoCrit, lostWarn}
	for _, e := range raised {
		t.Logf("%s: %s %s->%s %s (%ds after the first evaluation)", elapsed(), e.Name, e.OldStatus, e.Status, e.ValueString, e.When-first[alertPanic].When)
	}

	expect := func(ok bool, e netdatatest.AlarmLogEntry, want string) {
		t.Helper()
		if !ok {
			t.Errorf("%s %s->%s at %s: want %s", e.Name, e.OldStatus, e.Status, e.ValueString, want)
		}
	}
	expect(panicWarn.Status == "WARNING" && entryValue(panicWarn) > 25 && entryValue(panicWarn) <= 50, panicWarn, "WARNING between 25 and 50 %")
	expect(entryValue(panicCrit) > 50, panicCrit, "CRITICAL above 50 %")
	expect(utilWarn.Status == "WARNING" && entryValue(utilWarn) > 50 && entryValue(utilWarn) <= 80, utilWarn, "WARNING between 50 and 80 %")
	expect(entryValue(utilCrit) > 80, utilCrit, "CRITICAL above 80 %")
	expect(ttoWarn.Status == "WARNING" && entryValue(ttoWarn) < 600, ttoWarn, "WARNING under 600 s")
	expect(entryValue(ttoCrit) < 60, ttoCrit, "CRITICAL under 60 s")
	expect(lostWarn.Status == "WARNING" && entryValue(lostWarn) > 0, lostWarn, "WARNING on lost records")
	// The operator hears of panic mode before the backlog is half full.
	if panicWarn.When >= utilWarn.When || panicCrit.When > utilCrit.When {
		t.Errorf("panic-mode alert (WARNING at %d, CRITICAL at %d) not ahead of the utilization alert (%d, %d)",
			panicWarn.When, panicCrit.When, utilWarn.When, utilCrit.When)
	}
	for _, e := range raised {
		waitNotified(t, n, e, 30*time.Second)
	}

	// Low again: CLEAR once the window forgot the full backlog; the CLEAR is
	// notified a minute later.
	clearWait := alertWindow + 2*alertEvery + 30*time.Second
	var clears []netdatatest.AlarmLogEntry
	for _, last := range []netdatatest.AlarmLogEntry{panicCrit, utilCrit, ttoCrit, lostWarn} {
		c := waitLog(t, h, last.Name, last.UniqueID, clearWait, "CLEAR")
		t.Logf("%s: %s CLEAR (%s) %ds after %s", elapsed(), c.Name, c.ValueString, c.When-last.When, last.Status)
		clears = append(clears, c)
	}
	for _, c := range clears {
		waitNotified(t, n, c, clearNotifyWait+alertEvery+30*time.Second)
	}
	t.Logf("%s: every CLEAR notified", elapsed())

	log, err := h.AlarmLog(0)
	if err != nil {
		t.Fatal(err)
	}
	// A registered daemon whose process exists, and no stall: never raised.
	for _, name := range []string{alertDaemon, alertStall} {
		for _, e := range entriesOf(log, name) {
			if e.Status != "CLEAR" && e.Status != "UNINITIALIZED" {
				t.Errorf("%s raised: %s", name, describeLog([]netdatatest.AlarmLogEntry{e}))
			}
		}
	}
	// Hysteresis: no alert flapped on the way up or down.
	for _, name := range []string{alertPanic, alertUtil, alertTTO, alertLost} {
		if es := entriesOf(log, name); len(es) > 5 {
			t.Errorf("%s flapped: %s", name, describeLog(es))
		}
	}
	checkNoHealthErrors(t, n)
	if t.Failed() {
		t.Logf("alarm log: %s", describeLog(log))
	}
}
