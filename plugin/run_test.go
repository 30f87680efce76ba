package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"auditplugin/netlink"
	"auditplugin/netlink/nltest"
)

// First cycle and steady state: definitions, a first BEGIN without
// microseconds, later ones with them.
func TestGoldenCycles(t *testing.T) {
	h := newHarness(kernel(steadyKernel(steadyPayload), 4))
	h.start(t)
	w := h.stdout.wait(t, 3, 5*time.Second)
	// The steady cycle to compare is the first later one with samples: on a
	// starved CPU a window can pass without any, and its gaps are right.
	steady := -1
	for i := 2; steady < 0; i++ {
		w = h.stdout.wait(t, i+1, 5*time.Second)
		if !strings.Contains(w[i].data, "SET backlog =\n") {
			steady = i
		}
		if i == 10 {
			t.Fatalf("no cycle with samples among %d", i)
		}
	}
	checkStream(t, h.stdout.String())

	for _, line := range strings.Split(w[1].data, "\n") {
		if strings.HasPrefix(line, "BEGIN ") && len(strings.Fields(line)) != 2 {
			t.Errorf("first cycle: %q carries microseconds", line)
		}
	}
	for _, line := range strings.Split(w[steady].data, "\n") {
		if strings.HasPrefix(line, "BEGIN ") && len(strings.Fields(line)) != 3 {
			t.Errorf("steady cycle: %q has no microseconds", line)
		}
	}
	golden(t, "first_cycle", normalize(w[0].data+w[1].data))
	golden(t, "steady_state", normalize(w[steady].data))
}

// A kernel that answers once and then never again: the first cycle has the
// first status, later ones gaps for every status dimension while the
// monitor's own dimensions stay set; the failure is logged once.
func TestGoldenTransientError(t *testing.T) {
	var n atomic.Int32
	conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		if n.Add(1) == 1 {
			return [][]byte{nltest.Reply(req, steadyPayload)}, nil
		}
		return nil, nil // no reply: each query times out
	})
	h := newHarness(kernel(conn, 4))
	h.start(t)
	w := h.stdout.wait(t, 5, 5*time.Second)
	s := checkStream(t, h.stdout.String())
	golden(t, "transient_error", normalize(w[2].data))

	if v := s.series("linux_audit.backlog", "backlog"); len(v) < 4 || v[0] == nil || v[1] != nil || v[3] != nil {
		t.Errorf("backlog series %v: want a value, then gaps", deref(v))
	}
	for _, dim := range []string{"queries_held", "query_held_for"} {
		for i, v := range s.series(chartIDOf(t, dim), dim) {
			if v == nil {
				t.Errorf("%s is a gap in update %d: the monitor's own values never are", dim, i)
			}
		}
	}
	if got := strings.Count(h.stderr.String(), "failing"); got != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", got, h.stderr)
	}
	if !strings.Contains(h.stderr.String(), "no audit status reply") {
		t.Errorf("stderr does not say why: %q", h.stderr)
	}
}

// EPERM from the kernel: DISABLE, exit 1, and one stderr line with the fix.
func TestGoldenPermissionError(t *testing.T) {
	if !inInitialPIDNamespace() {
		t.Skip("outside the initial PID namespace netlink reports EPERM as a namespace problem")
	}
	conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		return [][]byte{nltest.Error(req, syscall.EPERM)}, nil
	})
	h := newHarness(kernel(conn, 4))
	exit, _ := h.start(t)
	code := waitExit(t, exit, 2*time.Second)
	exe, _ := os.Executable()
	stderr := strings.ReplaceAll(h.stderr.String(), exe, "<executable>")
	golden(t, "permission_error", fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, h.stdout, stderr))

	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if h.stdout.String() != "DISABLE\n" {
		t.Errorf("stdout %q, want only DISABLE", h.stdout)
	}
	if !strings.Contains(stderr, "setcap cap_audit_control+ep <executable>") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stderr is not one line naming the setcap fix: %q", stderr)
	}
	checkStream(t, h.stdout.String())
}

// A permanent error after charts exist still ends with DISABLE and exit 1,
// and the stream stays valid up to it.
func TestPermanentErrorLater(t *testing.T) {
	var n atomic.Int32
	conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		if n.Add(1) <= 3 {
			return [][]byte{nltest.Reply(req, steadyPayload)}, nil
		}
		return [][]byte{nltest.Error(req, syscall.ECONNREFUSED)}, nil // user namespace
	})
	h := newHarness(kernel(conn, 4))
	exit, _ := h.start(t)
	if code := waitExit(t, exit, 2*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	s := checkStream(t, h.stdout.String())
	if !s.disabled || len(s.order) == 0 {
		t.Errorf("want charts and then DISABLE; got %d charts, disabled=%v", len(s.order), s.disabled)
	}
	if !strings.Contains(h.stderr.String(), "hostPID") {
		t.Errorf("stderr does not give the namespace fix: %q", h.stderr)
	}
}

// A kernel without audit: the socket cannot even be opened.
func TestNoAuditSupport(t *testing.T) {
	h := newHarness(func() (statusClient, error) {
		return nil, fmt.Errorf("open audit netlink socket: %w (%w)", netlink.ErrNoAudit, syscall.EPROTONOSUPPORT)
	})
	exit, _ := h.start(t)
	if code := waitExit(t, exit, 2*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if h.stdout.String() != "DISABLE\n" || !strings.Contains(h.stderr.String(), "CONFIG_AUDIT") {
		t.Errorf("stdout %q, stderr %q", h.stdout, h.stderr)
	}
}

// The kernel holds every sender asleep after queueing its reply (backlog
// over its limit, backlog_wait_time > 0): the emit loop must still write
// every cycle on time; the queries are paced so that the held ones stay
// below -max-held-queries with one slot spare (backlog_wait_time here is
// 100 jiffies, 0.4 s at HZ 250: one query per 0.2 s with 3 slots); updates
// without a fresh sample repeat the last one instead of a gap; and nothing
// is logged, since nothing failed.
func TestNeverBlocksOnHeldQueries(t *testing.T) {
	const maxHeld = 3
	const wait = 400 * time.Millisecond // backlog_wait_time 100 jiffies at HZ 250
	release := make(chan struct{})
	var conn *nltest.Conn
	over := nltest.StatusPayload(0, 1, 1, 0, 0, 1000, 50, 1200, 0x7f, 100, 9000)
	conn = nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		conn.Inject(nltest.Reply(req, over)) // the reply is queued before the sender sleeps
		select {
		case <-release:
		case <-time.After(wait):
		}
		return nil, nil
	})
	baseline := runtime.NumGoroutine()
	h := newHarness(kernel(conn, maxHeld))
	h.p.opts.maxHeld = maxHeld
	_, cancel := h.start(t)

	const cycles = 15
	peakGoroutines := 0
	for i := 2; i <= cycles+1; i++ { // write 0 holds the definitions
		h.stdout.wait(t, i, 2*time.Second)
		peakGoroutines = max(peakGoroutines, runtime.NumGoroutine())
	}
	cancel()
	close(release)
	w := h.stdout.snapshot()

	// A loop that waited on the kernel would never write again; a loaded
	// machine delays a cycle now and then, so bound each gap loosely and the
	// typical one tightly.
	var gaps []time.Duration
	for i := 2; i <= cycles; i++ {
		gap := w[i].at.Sub(w[i-1].at)
		gaps = append(gaps, gap)
		if gap > 10*testInterval {
			t.Errorf("cycle %d came %v after the previous one, want about %v", i, gap, testInterval)
		}
	}
	slices.Sort(gaps)
	if median := gaps[len(gaps)/2]; median < testInterval/2 || median > testInterval*3/2 {
		t.Errorf("median time between cycles %v, want about %v (all: %v)", median, testInterval, gaps)
	}
	s := checkStream(t, h.stdout.String())
	held := deref(s.series("linux_audit.queries_held", "queries_held"))
	top := int64(0)
	for _, v := range held {
		if v > maxHeld-1 {
			t.Errorf("queries_held %d: more than -max-held-queries %d less the spare slot", v, maxHeld)
		}
		top = max(top, v)
	}
	if top < 1 {
		t.Errorf("queries_held series %v: no query was held", held)
	}
	// The hold shows while it lasts: up to the wait time.
	heldFor := deref(s.series("linux_audit.query_latency", "query_held_for"))
	if slices.Max(heldFor) < int64(wait*3/4/time.Microsecond) {
		t.Errorf("query_held_for %v never came near the %v hold", heldFor, wait)
	}
	// No gaps: the kernel's charts carry the last sample between paced queries.
	for _, dim := range []string{"backlog", "lost"} {
		chart := "linux_audit." + dim
		if vs := deref(s.series(chart, dim)); slices.Contains(vs, -1) {
			t.Errorf("%s has gaps: %v", chart, vs)
		}
	}
	// Per held query one goroutine (and OS thread); a handful for the
	// sampler, the receiver and the test itself.
	if limit := baseline + maxHeld + 8; peakGoroutines > limit {
		t.Errorf("%d goroutines during the run, want at most %d", peakGoroutines, limit)
	}
	if h.stderr.String() != "" {
		t.Errorf("stderr %q, want nothing: a stall is shown on the charts, not a failure", h.stderr)
	}
}

// Read-only: over a whole run the plugin only ever asks for the status.
func TestOnlyAuditGet(t *testing.T) {
	conn := steadyKernel(steadyPayload)
	h := newHarness(kernel(conn, 4))
	_, cancel := h.start(t)
	h.stdout.wait(t, 5, 5*time.Second)
	cancel()
	reqs := conn.Requests()
	if len(reqs) < 4 {
		t.Fatalf("only %d requests in 4 cycles", len(reqs))
	}
	for i, r := range reqs {
		if r.Header.Type != 1000 || len(r.Data) != 0 || r.Header.Flags&syscall.NLM_F_REQUEST == 0 {
			t.Errorf("request %d: type %d flags %#x payload %d bytes, want AUDIT_GET (1000) without payload",
				i, r.Header.Type, r.Header.Flags, len(r.Data))
		}
	}
}

// What the kernel does not send is neither defined nor set; what it sends
// beyond 5.9 (backlog_max_depth) gets its chart.
func TestChartsFollowReplySize(t *testing.T) {
	core := []uint32{0, 1, 0, 0, 0, 320, 3, 64}
	optional := map[string][]string{ // chart → the fields it needs, by name
		"linux_audit.backlog_wait_time":  {"backlog_wait_time"},
		"linux_audit.backlog_wait_stall": {"backlog_wait_stall"},
		"linux_audit.backlog_max_depth":  {"backlog_max_depth"},
	}
	for _, tc := range []struct {
		bytes int
		want  []string // optional charts this reply size fills
	}{
		{32, nil},
		{40, []string{"linux_audit.backlog_wait_time"}},
		{44, []string{"linux_audit.backlog_wait_time", "linux_audit.backlog_wait_stall"}},
		{48, []string{"linux_audit.backlog_wait_time", "linux_audit.backlog_wait_stall", "linux_audit.backlog_max_depth"}},
		{56, []string{"linux_audit.backlog_wait_time", "linux_audit.backlog_wait_stall", "linux_audit.backlog_max_depth"}},
	} {
		t.Run(fmt.Sprint(tc.bytes), func(t *testing.T) {
			fields := append(append([]uint32(nil), core...), 0x7f, 250, 40, 900, 0xdead, 0xbeef)
			payload := nltest.StatusPayload(fields[:tc.bytes/4]...)
			h := newHarness(kernel(steadyKernel(payload), 4))
			_, cancel := h.start(t)
			h.stdout.wait(t, 3, 5*time.Second)
			cancel()
			s := checkStream(t, h.stdout.String())
			for chartID, dims := range optional {
				_, defined := s.charts[chartID]
				if defined != slices.Contains(tc.want, chartID) {
					t.Errorf("%d-byte reply: chart %s defined=%v", tc.bytes, chartID, defined)
				}
				for _, d := range dims {
					if !defined && len(s.series(chartID, d)) > 0 {
						t.Errorf("SET %s for a chart that does not exist", d)
					}
				}
			}
			if slices.Contains(tc.want, "linux_audit.backlog_max_depth") {
				if v := deref(s.series("linux_audit.backlog_max_depth", "backlog_max_depth")); len(v) == 0 || v[0] != 900 {
					t.Errorf("backlog_max_depth %v, want 900", v)
				}
			}
			if v := deref(s.series("linux_audit.backlog", "backlog")); len(v) == 0 || v[0] != 64 {
				t.Errorf("backlog %v, want 64 (the core fields parse at every size)", v)
			}
		})
	}
}

// Without CONFIG_HZ the wait charts say jiffies instead of guessing seconds.
func TestUnknownHZ(t *testing.T) {
	h := newHarness(kernel(steadyKernel(steadyPayload), 4))
	h.p.kernelHZ = func() (int, error) { return 0, errors.New("find CONFIG_HZ: no config") }
	_, cancel := h.start(t)
	h.stdout.wait(t, 2, 5*time.Second)
	cancel()
	s := checkStream(t, h.stdout.String())
	for id, units := range map[string]string{"linux_audit.backlog_wait_stall": "jiffies/s", "linux_audit.backlog_wait_time": "jiffies"} {
		c := s.charts[id]
		if c == nil || c.units != units || c.dims[0].div != 1 {
			t.Errorf("%s: %+v, want units %s and divisor 1", id, c, units)
		}
	}
	if !strings.Contains(h.stderr.String(), "jiffies") {
		t.Errorf("stderr does not say the unit changed: %q", h.stderr)
	}
}

// Records lost between the first status and the sampler's first sample are
// counted: the counter state carries over from first to run.
func TestLostCountedFromFirstStatus(t *testing.T) {
	var n atomic.Int32
	conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		lost := uint32(10)
		if n.Add(1) > 1 {
			lost = 15
		}
		return [][]byte{nltest.Reply(req, nltest.StatusPayload(0, 1, 1, 0, 0, 8192, lost, 0, 0x7f, 0, 0))}, nil
	})
	h := newHarness(kernel(conn, 4))
	_, cancel := h.start(t)
	h.stdout.wait(t, 3, 5*time.Second)
	cancel()
	lost := deref(checkStream(t, h.stdout.String()).series("linux_audit.lost", "lost"))
	if len(lost) == 0 || slices.Max(lost) != 5 {
		t.Errorf("lost total %v, want it to reach 5", lost)
	}
}

func TestExitOnEPIPE(t *testing.T) {
	for _, failAt := range []int{1, 3} { // the chart definitions, a data cycle
		t.Run(fmt.Sprint("write ", failAt), func(t *testing.T) {
			h := newHarness(kernel(steadyKernel(steadyPayload), 4))
			h.stdout.failAt, h.stdout.err = failAt, syscall.EPIPE
			exit, _ := h.start(t)
			if code := waitExit(t, exit, time.Duration(failAt+2)*testInterval+time.Second); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(h.stderr.String(), "broken pipe") {
				t.Errorf("stderr %q does not name the write error", h.stderr)
			}
		})
	}
	t.Run("plain writer", func(t *testing.T) {
		h := newHarness(kernel(steadyKernel(steadyPayload), 4))
		h.p.out = newProtocol(epipeWriter{})
		exit, _ := h.start(t)
		waitExit(t, exit, time.Second)
	})
}

// QUIT on stdin (Netdata 2.x at shutdown) ends the plugin through serve.
func TestExitOnQuit(t *testing.T) {
	h := newHarness(kernel(steadyKernel(steadyPayload), 4))
	feed, exit := h.serveStdin()
	defer feed.Close()
	h.stdout.wait(t, 2, 5*time.Second)
	fmt.Fprintln(feed, "FUNCTION something")
	fmt.Fprintln(feed, "QUIT")
	start := time.Now()
	if code := waitExit(t, exit, 2*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	t.Logf("exited %v after QUIT", time.Since(start))
	checkStream(t, h.stdout.String())
}

// SIGTERM from Netdata: serve catches it and exits 0.
func TestExitOnSIGTERM(t *testing.T) {
	h := newHarness(kernel(steadyKernel(steadyPayload), 4))
	exit := make(chan int, 1)
	go func() { exit <- h.p.serve(nil) }()
	// serve has installed its handler once output appears.
	h.stdout.wait(t, 2, 5*time.Second)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, exit, time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	checkStream(t, h.stdout.String())
}

func TestExitOnCancel(t *testing.T) {
	h := newHarness(kernel(steadyKernel(steadyPayload), 4))
	exit, cancel := h.start(t)
	h.stdout.wait(t, 3, 5*time.Second)
	cancel()
	if code := waitExit(t, exit, time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	checkStream(t, h.stdout.String())
	time.Sleep(50 * time.Millisecond) // let the sampler notice the cancel
	if strings.Contains(h.stderr.String(), "canceled") {
		t.Errorf("shutdown logged as a failure: %q", h.stderr)
	}
}

// Cancel while no status ever came (the kernel does not answer): exit 0.
func TestExitOnCancelBeforeFirstStatus(t *testing.T) {
	h := newHarness(kernel(nltest.Dial(func(syscall.NetlinkMessage) ([][]byte, error) { return nil, nil }), 4))
	exit, cancel := h.start(t)
	time.Sleep(3 * testInterval)
	cancel()
	if code := waitExit(t, exit, time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if h.stdout.String() != "" {
		t.Errorf("charts defined without any status: %q", h.stdout)
	}
}

// The plugin exits within 2 s of Netdata's death at any update_every (here
// 60 s): after its charts, and while it still waits for a first status the
// kernel does not give.
func TestExitWhenParentGone(t *testing.T) {
	for _, tc := range []struct {
		name  string
		conn  *nltest.Conn
		lines int // writes to wait for before the parent dies
	}{
		{"after the charts", steadyKernel(steadyPayload), 1},
		{"before the first status", nltest.Dial(func(syscall.NetlinkMessage) ([][]byte, error) { return nil, nil }), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(kernel(tc.conn, 4))
			h.p.second = 60 * time.Second
			var alive atomic.Bool
			alive.Store(true)
			h.p.parentAlive = alive.Load
			exit, _ := h.start(t)
			if tc.lines > 0 {
				h.stdout.wait(t, tc.lines, 5*time.Second)
			} else {
				time.Sleep(300 * time.Millisecond)
			}
			alive.Store(false)
			start := time.Now()
			if code := waitExit(t, exit, 2*time.Second); code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			t.Logf("exited %v after the parent died", time.Since(start))
			if !strings.Contains(h.stderr.String(), "parent process) is gone") {
				t.Errorf("stderr %q does not say why", h.stderr)
			}
		})
	}
}

// The schedule keeps the monotonic clock: a schedule in wall time would stop
// emitting for as long as the clock is set back.
func TestFirstTick(t *testing.T) {
	now := time.Now()
	next := firstTick(now, testInterval)
	if !strings.Contains(next.String(), " m=") {
		t.Errorf("firstTick lost the monotonic clock reading: %v", next)
	}
	if d := next.Sub(now); d <= 0 || d > testInterval {
		t.Errorf("first tick %v after now, want within (0, %v]", d, testInterval)
	}
	if next.Round(0).UnixNano()%int64(testInterval) != 0 {
		t.Errorf("first tick %v is not on a multiple of %v", next.Round(0), testInterval)
	}
}

// Transient failures are logged once per change of state, not per cycle.
// A statusClient fake: a netlink timeout on a loaded machine would be a
// state change of its own.
func TestTransientLoggedOncePerState(t *testing.T) {
	var failing atomic.Bool
	ok, err := netlink.New(steadyKernel(steadyPayload), nil).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(func() (statusClient, error) { return &flakyClient{failing: &failing, st: ok}, nil })
	h.start(t)
	h.stdout.wait(t, 2, 5*time.Second)
	failing.Store(true)
	h.stdout.wait(t, 6, 5*time.Second)
	failing.Store(false)
	h.stdout.wait(t, 9, 5*time.Second)
	checkStream(t, h.stdout.String())
	e := h.stderr.String()
	if strings.Count(e, "failing") != 1 || strings.Count(e, "recovered") != 1 {
		t.Errorf("want one failing and one recovered line, got:\n%s", e)
	}
}

type flakyClient struct {
	failing *atomic.Bool
	st      netlink.Status
}

func (c *flakyClient) Status(context.Context) (netlink.Status, error) {
	if c.failing.Load() {
		return netlink.Status{}, fmt.Errorf("get audit status: %w", syscall.EBUSY)
	}
	return c.st, nil
}
func (c *flakyClient) Penalty() netlink.Penalty { return netlink.Penalty{} }
func (c *flakyClient) Close() error             { return nil }

func deref(vs []*int64) []int64 {
	out := make([]int64, 0, len(vs))
	for _, v := range vs {
		if v == nil {
			out = append(out, -1) // a gap, readable in failure messages
			continue
		}
		out = append(out, *v)
	}
	return out
}

// chartIDOf finds the chart a dimension belongs to.
func chartIDOf(t *testing.T, dimID string) string {
	t.Helper()
	for _, c := range charts {
		for _, d := range c.dims {
			if d.id == dimID {
				return c.fullID()
			}
		}
	}
	t.Fatalf("no chart has dimension %s", dimID)
	return ""
}
