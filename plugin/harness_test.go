package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"auditplugin/netlink"
	"auditplugin/netlink/nltest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// testInterval stands in for update_every: short enough for many cycles per
// test, long enough against scheduling noise under -race.
const testInterval = 100 * time.Millisecond

// Replies of a 5.9+ kernel (44 bytes) in a steady, healthy state: enabled,
// failure mode printk, auditd pid 4242 registered, no rate limit, backlog 12
// of 8192, 7 records lost before we started, backlog_wait_time 60 s at HZ
// 250, no stall.
var steadyPayload = nltest.StatusPayload(0, 1, 1, 4242, 0, 8192, 7, 12, 0x7f, 15000, 0)

// output records stdout. The plugin sends each cycle in one Write, so each
// recorded write is a cycle (the first one: the chart definitions).
type output struct {
	mu     sync.Mutex
	writes []timedWrite
	failAt int   // this write (1-based) and later ones fail with err; 0: never
	err    error // what failing writes return
	more   chan struct{}
}

type timedWrite struct {
	at   time.Time
	data string
}

func newOutput() *output { return &output{more: make(chan struct{}, 1)} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer func() {
		o.mu.Unlock()
		select {
		case o.more <- struct{}{}:
		default:
		}
	}()
	if o.failAt > 0 && len(o.writes)+1 >= o.failAt {
		return 0, o.err
	}
	o.writes = append(o.writes, timedWrite{time.Now(), string(b)})
	return len(b), nil
}

func (o *output) snapshot() []timedWrite {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]timedWrite(nil), o.writes...)
}

func (o *output) String() string {
	var b strings.Builder
	for _, w := range o.snapshot() {
		b.WriteString(w.data)
	}
	return b.String()
}

// wait returns once n writes were recorded, or fails the test.
func (o *output) wait(t *testing.T, n int, timeout time.Duration) []timedWrite {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if w := o.snapshot(); len(w) >= n {
			return w
		}
		select {
		case <-o.more:
		case <-deadline:
			t.Fatalf("%d writes after %v, want %d; stdout so far:\n%s", len(o.snapshot()), timeout, n, o)
		}
	}
}

// syncBuffer is stderr: the sampler goroutine and the emit loop both log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	p      *plugin
	stdout *output
	stderr *syncBuffer
}

// newHarness builds the plugin as realMain does, with everything that
// touches the machine replaced: the kernel by newClient, CONFIG_HZ by 250,
// /proc by fakes, update_every by testInterval.
func newHarness(newClient func() (statusClient, error)) *harness {
	h := &harness{stdout: newOutput(), stderr: &syncBuffer{}}
	opts := options{updateEvery: 1, sampleInterval: 20 * time.Millisecond, maxHeld: 4, growthSpan: time.Second}
	p := newPlugin(opts, h.stdout, h.stderr)
	p.second = testInterval
	p.newClient = newClient
	p.kernelHZ = func() (int, error) { return 250, nil }
	p.processExists = func(uint32) bool { return true }
	p.parentAlive = func() bool { return true }
	p.procStatus = func() io.Reader { return strings.NewReader("Name:\tplugin\nCapBnd:\t000001ffffffffff\n") }
	h.p = p
	return h
}

// start runs the plugin until cancel; at the test's end it cancels and
// fails the test if run does not return within 2 s.
func (h *harness) start(t *testing.T) (exit <-chan int, cancel func()) {
	t.Helper()
	ctx, cancelCtx := context.WithCancel(context.Background())
	codes := make(chan int, 1)
	finished := make(chan struct{})
	go func() {
		codes <- h.p.run(ctx)
		close(finished)
	}()
	t.Cleanup(func() {
		cancelCtx()
		select {
		case <-finished:
		case <-time.After(2 * time.Second):
			t.Errorf("run did not return within 2 s of cancel")
		}
	})
	return codes, cancelCtx
}

// serveStdin runs serve with a pipe as its stdin, as Netdata starts the
// plugin: the caller writes to feed (and closes it); exit gets serve's code.
func (h *harness) serveStdin() (feed *io.PipeWriter, exit chan int) {
	stdin, feed := io.Pipe()
	exit = make(chan int, 1)
	go func() { exit <- h.p.serve(stdin) }()
	return feed, exit
}

// waitExit waits for run's exit code.
func waitExit(t *testing.T, exit <-chan int, timeout time.Duration) int {
	t.Helper()
	select {
	case c := <-exit:
		return c
	case <-time.After(timeout):
		t.Fatalf("plugin still running after %v", timeout)
		return -1
	}
}

// kernel returns a newClient over a request→reply fake, the way
// kernelClient wraps the real socket.
// After a client closed its connection (a reconnect), the next one gets a
// new connection to the same fake, as kernelClient opens a new socket; all
// share one bound on held sends, as kernelClient's clients do.
func kernel(conn *nltest.Conn, maxHeld int) func() (statusClient, error) {
	limit := netlink.NewSenderLimit(maxHeld)
	var mu sync.Mutex
	cur := conn
	return func() (statusClient, error) {
		mu.Lock()
		defer mu.Unlock()
		if cur.Closed() {
			cur = cur.Redial()
		}
		return netlink.New(cur, limit), nil
	}
}

// steadyKernel answers every AUDIT_GET with payload.
func steadyKernel(payload []byte) *nltest.Conn {
	return nltest.Dial(nltest.StatusFunc(func() []byte { return payload }))
}

var (
	beginMicroseconds = regexp.MustCompile(`(?m)^(BEGIN \S+) \d+$`)
	timingValues      = regexp.MustCompile(`(?m)^(SET (?:query_reply|query_held_for|queries_held) =) \d+$`)
)

// normalize replaces what depends on timing: the microseconds since the last
// BEGIN, and the query latency and hold values. A gap stays a gap.
func normalize(s string) string {
	s = beginMicroseconds.ReplaceAllString(s, "$1 <microseconds>")
	return timingValues.ReplaceAllString(s, "$1 <timing>")
}

// golden compares got with testdata/NAME.golden, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plugin -run %s -update to create it)", err, t.Name())
	}
	if got == string(want) {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		if i >= len(g) || i >= len(w) || g[i] != w[i] {
			t.Errorf("%s: first difference at line %d:\n got: %q\nwant: %q\nfull output:\n%s\n(run go test ./plugin -run %s -update if the change is intended)",
				path, i+1, word(g, i), word(w, i), got, t.Name())
			return
		}
	}
}

// inInitialPIDNamespace mirrors netlink's test: outside it the kernel's
// EPERM is reported as a namespace problem, not a missing capability.
func inInitialPIDNamespace() bool {
	link, err := os.Readlink("/proc/self/ns/pid")
	return err == nil && link == "pid:[4026531836]"
}

// epipeWriter is a stdout whose reader is gone.
type epipeWriter struct{}

func (epipeWriter) Write([]byte) (int, error) { return 0, syscall.EPIPE }
