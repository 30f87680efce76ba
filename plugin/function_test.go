package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"auditplugin/netlink"
)

func TestCallWords(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{`FUNCTION tx1 10 "audit-status" "0x1F" "method=api,role=admin"`, []string{"FUNCTION", "tx1", "10", "audit-status", "0x1F", "method=api,role=admin"}},
		{`FUNCTION tx2 10 "audit-status info after:1 before:2"`, []string{"FUNCTION", "tx2", "10", "audit-status info after:1 before:2"}},
		{`FUNCTION  tx3	5 'audit-status'`, []string{"FUNCTION", "tx3", "5", "audit-status"}},
		{`FUNCTION tx4 5 "a \"quoted\" b"`, []string{"FUNCTION", "tx4", "5", `a "quoted" b`}},
		{`FUNCTION tx5 5 "unterminated`, []string{"FUNCTION", "tx5", "5", "unterminated"}},
		{`FUNCTION tx6 5 ""`, []string{"FUNCTION", "tx6", "5", ""}},
		{"   ", nil},
		{"QUIT", []string{"QUIT"}},
	}
	for _, tt := range tests {
		if got := callWords(tt.line, 8); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("callWords(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
	if got := callWords(strings.Repeat("w ", 100), 8); len(got) != 8 {
		t.Errorf("callWords kept %d words, want at most 8", len(got))
	}
}

// fnHarness runs the whole plugin (serve) with a fake kernel, a stdin pipe
// and a fake rule listing.
type fnHarness struct {
	*harness
	stdin io.WriteCloser
	exit  chan int
	rules atomic.Int32 // calls to the rule listing
}

func startFunctions(t *testing.T, countRules func(ctx context.Context) (int, error)) *fnHarness {
	t.Helper()
	h := &fnHarness{harness: newHarness(kernel(steadyKernel(steadyPayload), 4)), exit: make(chan int, 1)}
	h.p.funcs.countRules = func(ctx context.Context) (int, error) {
		h.rules.Add(1)
		return countRules(ctx)
	}
	r, w := io.Pipe()
	h.stdin = w
	go func() { h.exit <- h.p.serve(r) }()
	t.Cleanup(func() {
		fmt.Fprintln(w, "QUIT")
		w.Close()
		waitExit(t, h.exit, 3*time.Second)
	})
	h.stdout.wait(t, 2, 5*time.Second) // definitions and a first cycle
	return h
}

func (h *fnHarness) send(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(h.stdin, l+"\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// answers waits until n Function answers are on stdout and returns them by txid.
func (h *fnHarness) answers(t *testing.T, n int, timeout time.Duration) map[string]streamResult {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := checkStream(t, h.stdout.String())
		if len(s.results) >= n || time.Now().After(deadline) {
			if len(s.results) < n {
				t.Fatalf("%d answers after %v, want %d; stdout:\n%s", len(s.results), timeout, n, h.stdout)
			}
			m := map[string]streamResult{}
			for _, r := range s.results {
				if _, dup := m[r.txid]; dup {
					t.Errorf("transaction %s answered twice", r.txid)
				}
				m[r.txid] = r
			}
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type table struct {
	Status     int                       `json:"status"`
	Type       string                    `json:"type"`
	HasHistory *bool                     `json:"has_history"`
	Columns    map[string]map[string]any `json:"columns"`
	Data       [][]any                   `json:"data"`
	Error      string                    `json:"error_message"`
}

func decodeTable(t *testing.T, r streamResult) (table, map[string]string) {
	t.Helper()
	var tb table
	if err := json.Unmarshal([]byte(r.body), &tb); err != nil {
		t.Fatalf("answer %s is not JSON: %v\n%s", r.txid, err, r.body)
	}
	values := map[string]string{}
	for _, row := range tb.Data {
		if len(row) != 4 {
			t.Fatalf("row %v: want field, value, meaning, rowOptions", row)
		}
		f, _ := row[0].(string)
		v, _ := row[1].(string)
		m, _ := row[2].(string)
		if f == "" || v == "" || len(m) < 20 {
			t.Errorf("row %q: empty value or no meaning (%q)", f, m)
		}
		values[f] = v
	}
	return tb, values
}

// The calls of Netdata 2.x (5 fields), 1.37 (3 fields), and with parameters
// all get the table, answered by transaction id, with the sampled values.
func TestFunctionCallFormats(t *testing.T) {
	h := startFunctions(t, func(context.Context) (int, error) { return 5, nil })
	checkRegistered(t, h.stdout.String())
	h.send(t,
		`FUNCTION tx-2x 10 "audit-status" "0x1F" "method=api,role=god"`,
		`FUNCTION tx-137 10 "audit-status"`,
		`FUNCTION tx-info 10 "audit-status info after:1 before:2" "0x1" "src"`,
	)
	got := h.answers(t, 3, 5*time.Second)
	for _, id := range []string{"tx-2x", "tx-137", "tx-info"} {
		r, ok := got[id]
		if !ok {
			t.Fatalf("no answer for %s", id)
		}
		if r.code != "200" || r.contentType != "application/json" {
			t.Errorf("%s: code %s type %s", id, r.code, r.contentType)
		}
		tb, v := decodeTable(t, r)
		if tb.Status != 200 || tb.Type != "table" || tb.HasHistory == nil || *tb.HasHistory {
			t.Errorf("%s: status %d type %q has_history %v", id, tb.Status, tb.Type, tb.HasHistory)
		}
		for _, c := range []string{"field", "value", "meaning"} {
			if _, ok := tb.Columns[c]; !ok {
				t.Errorf("%s: no column %q", id, c)
			}
		}
		// steadyPayload: enabled, printk, pid 4242, backlog 12 of 8192, 7 lost, 15000 jiffies.
		want := map[string]string{
			"enabled": "1 (enabled)", "failure": "1 (printk)", "pid": "4242", "daemon_alive": "yes",
			"rate_limit": "0 (unlimited)", "backlog_limit": "8192", "backlog": "12 (0.1% of the limit)",
			"lost": "7", "backlog_wait_time": "15000 jiffies (60 s at CONFIG_HZ=250)",
			"backlog_wait_time_actual": "0 jiffies (0 s at CONFIG_HZ=250)", "rules": "5",
			"last_lost": "none since the plugin started", "reply_bytes": "44",
			"feature_bitmap": "0x7f (backlog_limit, backlog_wait_time, executable_path, exclude_extend, sessionid_filter, lost_reset, filter_fs)",
		}
		for f, w := range want {
			if v[f] != w {
				t.Errorf("%s: %s = %q, want %q", id, f, v[f], w)
			}
		}
		if !strings.HasPrefix(v["peak_backlog"], "12 at ") || !strings.Contains(v["sampled_at"], "ago") {
			t.Errorf("%s: peak_backlog %q sampled_at %q", id, v["peak_backlog"], v["sampled_at"])
		}
	}
}

func checkRegistered(t *testing.T, out string) {
	t.Helper()
	s := checkStream(t, out)
	if !slices.Contains(s.funcs, functionName) {
		t.Fatalf("no FUNCTION %s registered; stdout:\n%s", functionName, out)
	}
}

func TestFunctionErrorsAndCancel(t *testing.T) {
	release := make(chan struct{})
	h := startFunctions(t, func(ctx context.Context) (int, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return 1, nil
	})
	h.send(t,
		`FUNCTION tx-unknown 10 "processes" "0x1" "src"`,
		`FUNCTION tx-short 10`,
		`FUNCTION`, // no transaction: nothing to answer, logged
		`FUNCTION tx-slow 10 "audit-status"`,
		`FUNCTION_CANCEL tx-slow`,
		`FUNCTION_CANCEL tx-never-sent`,
		`FUNCTION_PROGRESS tx-slow`,
	)
	time.Sleep(50 * time.Millisecond)
	close(release)
	got := h.answers(t, 3, 5*time.Second)
	for id, code := range map[string]string{"tx-unknown": "404", "tx-short": "400", "tx-slow": "499"} {
		r := got[id]
		if r.code != code {
			t.Errorf("%s answered %q, want %s", id, r.code, code)
			continue
		}
		tb, _ := decodeTable(t, r)
		if tb.Status == 0 || tb.Error == "" {
			t.Errorf("%s: body %s, want status and error_message", id, r.body)
		}
	}
	if _, ok := got["tx-never-sent"]; ok {
		t.Error("a cancel of an unknown transaction was answered")
	}
	if !strings.Contains(h.stderr.String(), "without a usable transaction id") {
		t.Errorf("stderr %q: the call without a transaction is not logged", h.stderr)
	}
}

// A call with a payload (2.x) is answered once its payload ended; the
// payload is read past, however large.
func TestFunctionPayload(t *testing.T) {
	h := startFunctions(t, func(context.Context) (int, error) { return 0, nil })
	h.send(t, `FUNCTION_PAYLOAD tx-p 10 "audit-status" "0x1" "src" "application/json"`, `{"query": "x",`)
	big := `"pad": "` + strings.Repeat("z", 3*maxCommandLine) + `"}`
	h.send(t, big)
	time.Sleep(50 * time.Millisecond)
	if s := checkStream(t, h.stdout.String()); len(s.results) != 0 {
		t.Fatalf("answered before FUNCTION_PAYLOAD_END: %+v", s.results)
	}
	h.send(t, "FUNCTION_PAYLOAD_END")
	r := h.answers(t, 1, 5*time.Second)["tx-p"]
	if r.code != "200" {
		t.Fatalf("payload call answered %q", r.code)
	}
	if _, v := decodeTable(t, r); v["rules"] != "0" {
		t.Errorf("rules = %q, want 0", v["rules"])
	}
}

// Garbage and lines far longer than the reader's limit are survived: a call
// too long to read is answered 413 at once, later calls are answered and
// QUIT still works (the Cleanup sends it).
func TestFunctionGarbageAndHugeLines(t *testing.T) {
	h := startFunctions(t, func(context.Context) (int, error) { return 2, nil })
	h.send(t, "HELLO world", "\x00\x01\x02 binary", strings.Repeat("x", 10*maxCommandLine), "")
	h.send(t, `FUNCTION tx-huge 10 "audit-status `+strings.Repeat("p", 4*maxCommandLine)+`"`)
	h.send(t, `FUNCTION tx-after 10 "audit-status"`)
	got := h.answers(t, 2, 5*time.Second)
	if got["tx-huge"].code != "413" || got["tx-after"].code != "200" {
		t.Errorf("answers %+v", got)
	}
	if n := strings.Count(h.stderr.String(), "ignoring unknown command"); n != 1 {
		t.Errorf("unknown commands logged %d times, want once: %q", n, h.stderr)
	}
}

// While the kernel holds every audit sender asleep, the rule listing times
// out (or is not even sent) and the table says so; the chart cycles stay on
// time throughout, and answers never interleave with them.
func TestFunctionKernelHoldingQueries(t *testing.T) {
	h := startFunctions(t, func(ctx context.Context) (int, error) {
		<-ctx.Done() // a held listing: no reply before the deadline
		return 0, fmt.Errorf("list audit rules: %w (%w)", netlink.ErrTimeout, ctx.Err())
	})
	start := len(h.stdout.snapshot())
	for i := range 12 {
		h.send(t, fmt.Sprintf(`FUNCTION tx-%d 2 "audit-status" "0x1" "src"`, i))
	}
	got := h.answers(t, 12, 5*time.Second)
	busy, held := 0, 0
	for id, r := range got {
		switch r.code {
		case "503":
			busy++
		case "200":
			held++
			if _, v := decodeTable(t, r); v["rules"] != "unavailable (kernel holding queries)" {
				t.Errorf("%s: rules = %q", id, v["rules"])
			}
		default:
			t.Errorf("%s answered %s", id, r.code)
		}
	}
	if held < maxCalls || held+busy != 12 {
		t.Errorf("%d answered with the table, %d busy; want at least %d tables", held, busy, maxCalls)
	}
	// Each call waited up to ruleCountTimeout (1 s, half the 2 s call
	// timeout): the cycles around them came on time.
	w := h.stdout.snapshot()
	var gaps []time.Duration
	last := time.Time{}
	for _, x := range w[start:] {
		if !strings.HasPrefix(x.data, "BEGIN ") {
			continue // a Function answer
		}
		if !last.IsZero() {
			gaps = append(gaps, x.at.Sub(last))
		}
		last = x.at
	}
	if len(gaps) < 5 {
		t.Fatalf("only %d chart cycles while the calls waited", len(gaps))
	}
	for _, g := range gaps {
		if g > 5*testInterval {
			t.Errorf("a chart cycle came %v after the previous one, want about %v (gaps %v)", g, testInterval, gaps)
		}
	}

	// While the sampler reports held queries, no listing is even sent.
	before := h.rules.Load()
	h.p.stats.setHeld(2)
	h.send(t, `FUNCTION tx-held 10 "audit-status"`)
	r := h.answers(t, 13, 3*time.Second)["tx-held"]
	if _, v := decodeTable(t, r); v["rules"] != "unavailable (kernel holding queries)" || h.rules.Load() != before {
		t.Errorf("rules %q with %d listings sent while held", v["rules"], h.rules.Load()-before)
	}
}

// Many calls during chart cycles: every answer is whole, outside any BEGIN
// block, and answered exactly once (answers checks both).
func TestFunctionAnswersNeverInterleave(t *testing.T) {
	h := startFunctions(t, func(context.Context) (int, error) { return 3, nil })
	const n = 100
	for i := range n {
		h.send(t, fmt.Sprintf(`FUNCTION tx-%d 10 "audit-status"`, i))
		if i%10 == 0 {
			time.Sleep(testInterval / 2)
		}
	}
	got := h.answers(t, n, 10*time.Second)
	for i := range n {
		if c := got[fmt.Sprintf("tx-%d", i)].code; c != "200" && c != "503" {
			t.Errorf("tx-%d answered %q", i, c)
		}
	}
	for _, w := range h.stdout.snapshot() {
		if strings.Contains(w.data, "FUNCTION_RESULT_BEGIN") && (!strings.HasPrefix(w.data, "FUNCTION_RESULT_BEGIN") || strings.Count(w.data, "FUNCTION_RESULT_BEGIN") != 1) {
			t.Fatalf("an answer shares a write with other output:\n%.300s", w.data)
		}
	}
}

func TestStatusTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newStatusTracker(t0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// lost is counted by the sampler (counterDelta); 100 before we started is not ours.
	tr.observe(netlink.Status{Backlog: 5, Lost: 100}, at(1), 0)
	if s := tr.snapshot(); s.peakBacklog != 5 || !s.lastLostAt.IsZero() || s.lostSince != 0 {
		t.Fatalf("after the first sample: %+v", s)
	}
	tr.observe(netlink.Status{Backlog: 40, Lost: 100}, at(2), 0)
	tr.observe(netlink.Status{Backlog: 10, Lost: 103}, at(3), 3)
	tr.observe(netlink.Status{Backlog: 1, Lost: 2}, at(4), 2) // reset to 0, then 2 lost
	tr.observe(netlink.Status{Backlog: 1, Lost: 2}, at(5), 0)
	s := tr.snapshot()
	if s.peakBacklog != 40 || !s.peakAt.Equal(at(2)) {
		t.Errorf("peak %d at %v, want 40 at %v", s.peakBacklog, s.peakAt, at(2))
	}
	if s.lostSince != 5 || !s.lastLostAt.Equal(at(4)) {
		t.Errorf("lost %d, last at %v; want 5 at %v", s.lostSince, s.lastLostAt, at(4))
	}
	if !s.lastAt.Equal(at(5)) || s.last.Lost != 2 {
		t.Errorf("last sample %+v at %v", s.last, s.lastAt)
	}
}

// The table flags what needs attention and shows what an older or newer
// kernel has: no wait-time fields on a 32-byte reply, max depth on 48 bytes.
func TestStatusRows(t *testing.T) {
	now := time.Unix(2000, 0)
	snap := trackerSnapshot{
		started: now.Add(-time.Hour), seen: true, lastAt: now.Add(-30 * time.Second),
		last:        netlink.Status{Enabled: netlink.Enabled, Failure: netlink.FailurePanic, PID: 77, BacklogLimit: 100, Backlog: 90, ReplyBytes: 32},
		peakBacklog: 95, peakAt: now.Add(-time.Minute), lostSince: 3, lastLostAt: now.Add(-time.Minute),
	}
	rows := statusRows(snap, "unavailable (x)", 0, func(uint32) bool { return false }, now)
	byField := map[string]statusRow{}
	for _, r := range rows {
		byField[r.field] = r
	}
	for f, sev := range map[string]string{"failure": "warning", "daemon_alive": "error", "backlog": "warning", "last_lost": "warning", "sampled_at": "notice"} {
		if byField[f].severity != sev {
			t.Errorf("%s severity %q, want %q", f, byField[f].severity, sev)
		}
	}
	for _, f := range []string{"feature_bitmap", "backlog_wait_time", "backlog_wait_time_actual", "backlog_max_depth"} {
		if _, ok := byField[f]; ok {
			t.Errorf("a 32-byte reply shows %s", f)
		}
	}
	snap.last = netlink.Status{BacklogWaitTime: 500, BacklogMaxDepth: 9, ReplyBytes: 48,
		Fields: netlink.FieldFeatureBitmap | netlink.FieldBacklogWaitTime | netlink.FieldBacklogWaitTimeActual | netlink.FieldBacklogMaxDepth}
	rows = statusRows(snap, "0", 0, func(uint32) bool { return true }, now)
	byField = map[string]statusRow{}
	for _, r := range rows {
		byField[r.field] = r
	}
	if byField["backlog_max_depth"].value != "9" || byField["backlog_wait_time"].value != "500 jiffies (CONFIG_HZ unknown)" {
		t.Errorf("48-byte reply rows: %+v", byField)
	}
	if r := statusRows(trackerSnapshot{}, "1", 250, nil, now); r[0].value != "not sampled yet" {
		t.Errorf("no sample yet: %+v", r)
	}
}

func TestKeepaliveInterval(t *testing.T) {
	tests := []struct {
		version string
		want    time.Duration
	}{
		{"v2.11.0", time.Minute},
		{"2.11.0-12-nightly", time.Minute},
		{"v3.0.0", time.Minute},
		{"v1.37.1", 0}, // 1.37 does not know the keyword
		{"v1.99.0", 0},
		{"", 0}, // unknown agent: do not risk it
		{"garbage", 0},
		{"v", 0},
	}
	for _, tt := range tests {
		if got := keepaliveInterval(tt.version); got != tt.want {
			t.Errorf("keepaliveInterval(%q) = %v, want %v", tt.version, got, tt.want)
		}
	}
}

// PLUGIN_KEEPALIVE goes out between updates, also before the first status,
// each in a write of its own.
func TestKeepaliveSent(t *testing.T) {
	for _, every := range []time.Duration{30 * time.Millisecond, 0} {
		h := newHarness(kernel(steadyKernel(steadyPayload), 4))
		h.p.keepaliveEvery = every
		_, cancel := h.start(t)
		h.stdout.wait(t, 4, 5*time.Second)
		time.Sleep(100 * time.Millisecond)
		cancel()
		s := checkStream(t, h.stdout.String())
		if every > 0 && s.keepalives < 3 {
			t.Errorf("%d keepalives in about %v at every %v", s.keepalives, 3*testInterval, every)
		}
		if every == 0 && s.keepalives != 0 {
			t.Errorf("%d keepalives with keepalive off", s.keepalives)
		}
		for _, w := range h.stdout.snapshot() {
			if strings.Contains(w.data, "PLUGIN_KEEPALIVE") && w.data != "PLUGIN_KEEPALIVE\n" {
				t.Errorf("keepalive shares a write: %.200q", w.data)
			}
		}
	}
}

// overlapWriter fails if two Writes are ever in progress at once, as two
// writers to Netdata's pipe would interleave their bytes.
type overlapWriter struct {
	busy, overlaps atomic.Int32
}

func (o *overlapWriter) Write(b []byte) (int, error) {
	if !o.busy.CompareAndSwap(0, 1) {
		o.overlaps.Add(1)
	}
	time.Sleep(time.Millisecond)
	o.busy.Store(0)
	return len(b), nil
}

// Chart cycles, answers and keepalives all write through one lockedWriter.
func TestOneLockedWriter(t *testing.T) {
	p := newPlugin(options{updateEvery: 1, sampleInterval: time.Second, maxHeld: 1, growthSpan: 3 * time.Second}, io.Discard, io.Discard)
	if p.out.out != p.stdout || p.funcs.out != p.stdout {
		t.Fatal("the protocol writer and the Function answers do not share the plugin's locked stdout")
	}
	o := &overlapWriter{}
	lw := &lockedWriter{w: o}
	done := make(chan struct{})
	for range 8 {
		go func() {
			for range 20 {
				lw.Write([]byte("x\n"))
			}
			done <- struct{}{}
		}()
	}
	for range 8 {
		<-done
	}
	if n := o.overlaps.Load(); n != 0 {
		t.Errorf("%d overlapping writes through lockedWriter", n)
	}
}

// While the first status fails (transient errors retried once per update
// interval, with nothing to write), the keepalive still goes out on 2.x.
func TestKeepaliveBeforeFirstStatus(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	h := newHarness(func() (statusClient, error) { return &flakyClient{failing: &failing}, nil })
	h.p.second = time.Hour // retries far apart: only the keepalive writes
	h.p.keepaliveEvery = 20 * time.Millisecond
	h.start(t)
	w := h.stdout.wait(t, 3, 5*time.Second)
	for _, x := range w[:3] {
		if x.data != "PLUGIN_KEEPALIVE\n" {
			t.Errorf("write %q before the first status, want only keepalives", x.data)
		}
	}
}
