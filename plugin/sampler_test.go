package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"auditplugin/netlink"
)

// scriptClient is a statusClient for tests where the netlink exchange is not
// the point: Status returns the scripted replies in order (the last one
// repeats), Penalty reports and resets a hold like netlink.Client does.
type scriptClient struct {
	mu      sync.Mutex
	replies []scripted
	calls   int
	held    int
	longest time.Duration // reported once by Penalty, then reset
	block   bool          // Status waits for ctx instead of answering
}

type scripted struct {
	st  netlink.Status
	err error
}

func (c *scriptClient) Status(ctx context.Context) (netlink.Status, error) {
	c.mu.Lock()
	if c.block {
		c.mu.Unlock()
		<-ctx.Done()
		return netlink.Status{}, netlink.ErrTimeout
	}
	defer c.mu.Unlock()
	r := c.replies[min(c.calls, len(c.replies)-1)]
	c.calls++
	return r.st, r.err
}

func (c *scriptClient) Penalty() netlink.Penalty {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := netlink.Penalty{Held: c.held, LongestHold: c.longest}
	c.longest = 0
	return p
}

func (c *scriptClient) Close() error { return nil }

func newTestSampler(c statusClient, stderr *syncBuffer) *sampler {
	if stderr == nil {
		stderr = &syncBuffer{}
	}
	return newSampler(func() (statusClient, error) { return c, nil }, 20*time.Millisecond, newStateLog(stderr), newGrowthEstimator(time.Second))
}

// status is a 5.9 kernel's reply with the given backlog numbers.
func status(backlog, limit, lost, waitActual uint32) netlink.Status {
	return netlink.Status{
		Enabled: netlink.Enabled, Backlog: backlog, BacklogLimit: limit, Lost: lost,
		BacklogWaitTimeActual: waitActual, ReplyBytes: 44,
		Fields: netlink.FieldFeatureBitmap | netlink.FieldBacklogWaitTime | netlink.FieldBacklogWaitTimeActual,
	}
}

// sampleWindow takes one sample per status and returns the window's values.
func sampleWindow(t *testing.T, s *sampler, c *scriptClient, sts ...netlink.Status) map[string]int64 {
	t.Helper()
	for _, st := range sts {
		c.mu.Lock()
		c.replies = []scripted{{st: st}}
		c.calls = 0
		c.mu.Unlock()
		if s.sampleOnce(context.Background()) {
			t.Fatal("sampleOnce asked to stop")
		}
	}
	w, err := s.take()
	if err != nil {
		t.Fatal(err)
	}
	return collect(w, func(uint32) bool { return true })
}

// Peak utilization is computed per sample against the limit in force then,
// not the peak backlog against the last limit.
func TestPeakUtilizationAcrossLimitChanges(t *testing.T) {
	c := &scriptClient{}
	s := newTestSampler(c, nil)
	v := sampleWindow(t, s, c,
		status(900, 1000, 0, 0),  // 90.00 %
		status(1200, 4000, 0, 0), // 30.00 %: the peak backlog, not the peak utilization
		status(100, 200, 0, 0),   // 50.00 %, the last sample
	)
	want := map[string]int64{"backlog": 100, "backlog_peak": 1200, "backlog_limit": 200, "backlog_unlimited": 0,
		"utilization": 5000, "utilization_peak": 9000}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %d, want %d", k, v[k], w)
		}
	}
}

func TestUnlimitedBacklog(t *testing.T) {
	c := &scriptClient{}
	s := newTestSampler(c, nil)
	v := sampleWindow(t, s, c, status(10, 0, 0, 0), status(30, 0, 0, 0))
	if _, ok := v["utilization"]; ok {
		t.Errorf("utilization %d with no limit, want a gap", v["utilization"])
	}
	if _, ok := v["utilization_peak"]; ok {
		t.Errorf("utilization_peak %d with no limit, want a gap", v["utilization_peak"])
	}
	if _, ok := v["time_to_overflow"]; ok {
		t.Errorf("time_to_overflow with no limit, want a gap")
	}
	if v["backlog_unlimited"] != 1 || v["backlog_limit"] != 0 || v["backlog_peak"] != 30 {
		t.Errorf("unlimited %d limit %d peak %d, want 1 0 30", v["backlog_unlimited"], v["backlog_limit"], v["backlog_peak"])
	}

	// A limit earlier in the window still gives that sample's peak.
	v = sampleWindow(t, s, c, status(500, 1000, 0, 0), status(700, 0, 0, 0))
	if _, ok := v["utilization"]; ok || v["utilization_peak"] != 5000 || v["backlog_unlimited"] != 1 {
		t.Errorf("limit 1000 then none: %v", v)
	}
}

// Lost and backlog_wait_time_actual are reset-aware: a counter reset to 0
// (auditctl --reset-lost) adds what was counted since, never a negative
// delta, so the incremental dimension stays monotonic.
func TestCountersSurviveReset(t *testing.T) {
	c := &scriptClient{}
	s := newTestSampler(c, nil)
	var lost, wait []int64
	for _, n := range []uint32{100, 0, 5, 8, 2, 2} {
		v := sampleWindow(t, s, c, status(0, 1000, n, n*10))
		lost, wait = append(lost, v["lost"]), append(wait, v["backlog_wait_stall"])
	}
	wantLost := []int64{0, 0, 5, 8, 10, 10} // 100→0 reset, +5, +3, reset to 2, +0
	for i := range wantLost {
		if lost[i] != wantLost[i] || wait[i] != 10*wantLost[i] {
			t.Fatalf("lost totals %v, waited %v; want %v and ten times that", lost, wait, wantLost)
		}
	}
}

// A u32 wrap is counted as the increase past 2^32; a reset (auditctl
// --reset-lost) as the value counted since 0. counterDelta's rule tells them
// apart by whether the modular increase is plausible for the elapsed time.
func TestCounterDeltaWrapOrReset(t *testing.T) {
	const q = 250 * time.Millisecond
	for _, tc := range []struct {
		name      string
		prev, cur uint32
		elapsed   time.Duration
		want      uint64
	}{
		{"increase", 10, 25, q, 15},
		{"no change", 7, 7, q, 0},
		{"wrap near 2^32", 0xffffff00, 0x10, q, 272},
		{"wrap from the top", 0xffffffff, 0, q, 1},
		{"wrap at the rate bound", 0xffffffff - maxCounterRate/4 + 1, 0, q, maxCounterRate / 4},
		{"reset to 0 and counted since", 5000, 10, q, 10},
		{"reset to 0", 5000, 0, q, 0},
		{"reset from the upper half", 0x80000000, 0x10, q, 0x10},
		{"just past the rate bound: reset", 0xffffffff - maxCounterRate/4, 0, q, 0},
		{"wrap after a long gap", 0xf0000000, 0x10, 10 * time.Second, 0x10000010},
		{"no time elapsed: reset", 0xffffff00, 0x10, 0, 0x10},
		{"half the range is never a wrap", 0x80000010, 0x10, time.Hour, 0x10},
	} {
		if got := counterDelta(tc.prev, tc.cur, tc.elapsed); got != tc.want {
			t.Errorf("%s: counterDelta(%#x, %#x, %v) = %d, want %d", tc.name, tc.prev, tc.cur, tc.elapsed, got, tc.want)
		}
	}
}

// Through the sampler, samples 250 ms apart: a wrap of lost and of
// backlog_wait_time_actual adds 272, a reset then adds what was counted since.
func TestCountersWrapAndReset(t *testing.T) {
	s := newTestSampler(&scriptClient{}, nil)
	at := time.Now()
	var lost, wait []uint64
	for _, n := range []uint32{0xffffff00, 0x10, 0x20, 3} {
		s.add(status(0, 1000, n, n), time.Millisecond, at)
		at = at.Add(250 * time.Millisecond)
		w, _ := s.take()
		lost, wait = append(lost, w.counters.lost), append(wait, w.counters.waitActual)
	}
	want := []uint64{0, 272, 288, 291} // wrap +272, +16, reset to 0 then +3
	for i := range want {
		if lost[i] != want[i] || wait[i] != want[i] {
			t.Fatalf("lost totals %v, waited %v; want both %v", lost, wait, want)
		}
	}
}

// Counter state carries from first to run, so the records lost between
// the first status and the next sample are counted.
func TestCountersCarryOverFromFirstStatus(t *testing.T) {
	c := &scriptClient{replies: []scripted{{st: status(0, 1000, 10, 0)}, {st: status(0, 1000, 15, 0)}}}
	s := newTestSampler(c, nil)
	if _, err := s.first(context.Background(), testInterval); err != nil {
		t.Fatal(err)
	}
	s.sampleOnce(context.Background())
	w, _ := s.take()
	if w.counters.lost != 5 {
		t.Errorf("lost total %d after 10 → 15, want 5", w.counters.lost)
	}
}

// A 3.13 kernel's 32-byte reply: no values for what it does not send.
func TestCollectOldKernel(t *testing.T) {
	st := netlink.Status{Enabled: netlink.Enabled, BacklogLimit: 64, Backlog: 3, ReplyBytes: 32}
	v := collect(window{samples: 1, last: st, peakUtilBP: -1}, func(uint32) bool { return false })
	for _, k := range []string{"backlog_wait_time", "backlog_wait_stall", "backlog_max_depth"} {
		if _, ok := v[k]; ok {
			t.Errorf("%s = %d from a 32-byte reply", k, v[k])
		}
	}
	if v["backlog"] != 3 || v["utilization"] != 468 {
		t.Errorf("backlog %d utilization %d, want 3 and 468", v["backlog"], v["utilization"])
	}
}

func TestCollectStates(t *testing.T) {
	st := netlink.Status{Enabled: netlink.Immutable, Failure: netlink.FailurePanic, PID: 77, RateLimit: 500}
	for _, running := range []bool{false, true} {
		v := collect(window{samples: 1, last: st, peakUtilBP: -1}, func(pid uint32) bool { return pid == 77 && running })
		want := map[string]int64{"enabled_disabled": 0, "enabled_enabled": 0, "enabled_immutable": 1,
			"failure_silent": 0, "failure_printk": 0, "failure_panic": 1,
			"daemon_registered": 1, "daemon_running": bool01(running), "rate_limit": 500}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("running=%v: %s = %d, want %d", running, k, v[k], w)
			}
		}
	}
	// No sample: only the monitor's own values.
	v := collect(window{peakUtilBP: -1, penalty: netlink.Penalty{Held: 2, LongestHold: 1500 * time.Millisecond}}, nil)
	if len(v) != 2 || v["queries_held"] != 2 || v["query_held_for"] != 1500000 {
		t.Errorf("empty window: %v", v)
	}
}

// netlink.Client.Penalty resets the longest hold; the sampler calls it too,
// and a hold that ended between two takes must still reach the chart.
func TestHoldSeenBySamplerIsCharted(t *testing.T) {
	c := &scriptClient{replies: []scripted{{st: status(0, 1000, 0, 0)}}}
	s := newTestSampler(c, nil)
	s.sampleOnce(context.Background())
	c.mu.Lock()
	c.longest = 1500 * time.Millisecond // a query the kernel held, now returned
	c.mu.Unlock()
	s.sampleOnce(context.Background()) // its Penalty call consumes the record
	w, _ := s.take()
	if got := collect(w, nil)["query_held_for"]; got != 1500000 {
		t.Errorf("query_held_for %d µs, want 1500000", got)
	}
}

// While a query is held, the sampler asks once per window, not per sample:
// each further query would be held too and use up the sender pool.
func TestHeldQueriesAskOncePerWindow(t *testing.T) {
	c := &scriptClient{replies: []scripted{{st: status(1200, 1000, 0, 0)}}, held: 1}
	s := newTestSampler(c, nil)
	for i := 0; i < 5; i++ {
		s.sampleOnce(context.Background())
	}
	if c.calls != 1 {
		t.Errorf("%d queries in one window while one is held, want 1", c.calls)
	}
	s.take()
	s.sampleOnce(context.Background())
	if c.calls != 2 {
		t.Errorf("%d queries after a new window, want 2", c.calls)
	}
}

func TestTransientAndPermanentErrors(t *testing.T) {
	stderr := &syncBuffer{}
	c := &scriptClient{replies: []scripted{{err: errors.New("get audit status: device busy")}}}
	s := newTestSampler(c, stderr)
	for i := 0; i < 3; i++ {
		if s.sampleOnce(context.Background()) {
			t.Fatal("a transient error stopped sampling")
		}
	}
	w, fatal := s.take()
	if fatal != nil || w.samples != 0 || !w.failed {
		t.Errorf("window %+v, fatal %v: want no samples, failed, no fatal", w, fatal)
	}
	if n := strings.Count(stderr.String(), "failing"); n != 1 {
		t.Errorf("logged %d times:\n%s", n, stderr)
	}

	c.replies = []scripted{{err: netlink.ErrPermission}}
	if !s.sampleOnce(context.Background()) {
		t.Error("a permanent error did not stop sampling")
	}
	if _, fatal := s.take(); !errors.Is(fatal, netlink.ErrPermission) {
		t.Errorf("fatal %v, want ErrPermission", fatal)
	}
}

// Shutting down while a query waits is not a failure worth a log line.
func TestShutdownIsNotLogged(t *testing.T) {
	stderr := &syncBuffer{}
	s := newTestSampler(&scriptClient{block: true}, stderr)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.run(ctx)
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("sampler did not stop")
	}
	if e := stderr.String(); e != "" {
		t.Errorf("shutdown logged: %q", e)
	}
}

// A closed client (socket failed) is replaced on the next sample.
func TestReconnectAfterClosed(t *testing.T) {
	broken := &scriptClient{replies: []scripted{{err: netlink.ErrClosed}}}
	good := &scriptClient{replies: []scripted{{st: status(1, 10, 0, 0)}}}
	clients := []*scriptClient{broken, good}
	s := newSampler(func() (statusClient, error) {
		c := clients[0]
		clients = clients[1:]
		return c, nil
	}, 20*time.Millisecond, newStateLog(&syncBuffer{}), newGrowthEstimator(time.Second))
	s.sampleOnce(context.Background())
	s.sampleOnce(context.Background())
	if w, _ := s.take(); w.samples != 1 || w.last.Backlog != 1 {
		t.Errorf("after reconnecting: %d samples, backlog %d", w.samples, w.last.Backlog)
	}
}

// While queries are held, one goes out per backlog_wait_time/(max-held-1):
// however long the stall, at most max-held-1 are asleep at once.
func TestHeldPace(t *testing.T) {
	for _, tt := range []struct {
		waitJiffies uint32
		hz, maxHeld int
		want        time.Duration
	}{
		{15000, 250, 64, 60 * time.Second / 63},
		{5000, 250, 3, 10 * time.Second},
		{5000, 1000, 3, 2500 * time.Millisecond},
		{5000, 0, 3, 25 * time.Second}, // HZ unknown: 100, the longest wait
		{5000, 250, 1, 0},              // one slot: the pool itself paces
		{0, 250, 64, 0},
	} {
		s := newTestSampler(&scriptClient{}, nil)
		s.hz, s.maxHeld = tt.hz, tt.maxHeld
		st := status(10, 100, 0, 0)
		st.BacklogWaitTime = tt.waitJiffies
		s.add(st, time.Millisecond, time.Now())
		if got := s.heldPace(); got != tt.want {
			t.Errorf("wait %d jiffies, HZ %d, max held %d: pace %v, want %v", tt.waitJiffies, tt.hz, tt.maxHeld, got, tt.want)
		}
	}
}

// An update without a fresh sample because queries are held repeats the
// last sample; one without a sample for any other reason is a gap.
func TestCarryWhileHeld(t *testing.T) {
	c := &scriptClient{}
	s := newTestSampler(c, nil)
	sampleWindow(t, s, c, status(700, 1000, 5, 40))
	c.mu.Lock()
	c.held = 1
	c.mu.Unlock()
	w, _ := s.take()
	if !w.carried || w.last.Backlog != 700 || w.counters.lost != 0 {
		t.Fatalf("held, no sample: carried %v backlog %d", w.carried, w.last.Backlog)
	}
	v := collect(w, func(uint32) bool { return true })
	if v["backlog"] != 700 || v["utilization"] != 7000 || v["queries_held"] != 1 {
		t.Errorf("carried values %v", v)
	}
	c.mu.Lock()
	c.held = 0
	c.mu.Unlock()
	if w, _ := s.take(); w.carried || w.samples != 0 {
		t.Errorf("not held, no sample: carried %v samples %d, want a gap", w.carried, w.samples)
	}
}
