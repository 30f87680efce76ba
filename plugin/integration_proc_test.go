package main

// Helpers of integration_test.go: build the real audit.plugin once, run it
// as a subprocess as Netdata would, and record what it prints and when.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/testkit"
)

// pluginBinary is the plugin as Netdata's packagers build it (no race
// detector, no cgo), built once for all the tests of this package.
func pluginBinary(t *testing.T) string {
	t.Helper()
	return testkit.SharedPlugin(t)
}

// pluginProc is one audit.plugin subprocess. Its stdout is read as it
// arrives; each cycle (one BEGIN…END block per chart) is timestamped when
// its first line is read.
type pluginProc struct {
	t     *testing.T
	name  string
	every time.Duration
	cmd   *exec.Cmd
	pid   int

	stdin  io.WriteCloser
	stderr *syncBuffer

	mu         sync.Mutex
	out        strings.Builder
	charts     int         // CHART lines before the first BEGIN
	firstChart string      // the chart each cycle begins with
	arrivals   []time.Time // when the first BEGIN of each cycle was read
	complete   int         // cycles whose last END was read
	completeAt int         // length of out at the end of the last complete cycle
	ends       int         // END lines in the current cycle
	proc       []procSample
	newCycle   chan struct{}

	termAt  time.Time     // when stop sent SIGTERM
	stalls  []string      // thread states whenever a cycle was 2 s late
	exited  chan struct{} // closed once stdout hit EOF and the process was reaped
	waitErr error
	stopped sync.Once
}

// procSample is the process's thread count and resident memory at one moment.
type procSample struct {
	at      time.Time
	threads int
	rssKB   int
}

// newPluginProc prepares a plugin run and registers its stop with
// t.Cleanup now: cleanups run last-registered first, so a call before
// kerneltest.Setup keeps the plugin running until the kernel is restored.
// every is its update_every: the watchdog reports a cycle missing 2 s past it.
func newPluginProc(t *testing.T, name string, every time.Duration) *pluginProc {
	p := &pluginProc{t: t, name: name, every: every, stderr: &syncBuffer{}, newCycle: make(chan struct{}, 1), exited: make(chan struct{})}
	t.Cleanup(func() { p.stop(45 * time.Second) })
	return p
}

// start runs the binary with args, optionally behind wrapper (e.g. setpriv).
// stdin is a pipe that stays open, as Netdata's does.
func (p *pluginProc) start(wrapper []string, exe string, args ...string) {
	p.t.Helper()
	argv := append(append(append([]string(nil), wrapper...), exe), args...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %v: %v", argv, err)
	}
	p.pid = p.cmd.Process.Pid
	p.t.Logf("%s: started pid %d: %s", p.name, p.pid, strings.Join(argv, " "))
	go p.watchProc()
	go p.watchdog()
	go func() {
		p.read(stdout)
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
}

func (p *pluginProc) read(stdout io.Reader) {
	r := bufio.NewReader(stdout)
	for {
		line, err := r.ReadString('\n')
		now := time.Now()
		p.mu.Lock()
		p.out.WriteString(line)
		if strings.HasSuffix(line, "\n") {
			p.noteLine(strings.TrimSuffix(line, "\n"), now)
		}
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// noteLine tracks cycles; p.mu is held.
func (p *pluginProc) noteLine(line string, now time.Time) {
	switch {
	case strings.HasPrefix(line, "CHART ") && len(p.arrivals) == 0:
		p.charts++
	case strings.HasPrefix(line, "BEGIN "):
		id := strings.Fields(line)[1]
		if p.firstChart == "" {
			p.firstChart = id
		}
		if id == p.firstChart {
			p.arrivals = append(p.arrivals, now)
			p.ends = 0
		}
	case line == "END":
		p.ends++
		if p.ends == p.charts {
			p.complete++
			p.completeAt = p.out.Len()
			select {
			case p.newCycle <- struct{}{}:
			default:
			}
		}
	}
}

// watchdog records where the plugin's threads are whenever a cycle is 2 s
// late (before the stop): the diagnosis of a stalled emit loop.
func (p *pluginProc) watchdog() {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var dumped time.Time
	for {
		select {
		case <-p.exited:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		last := time.Time{}
		if n := len(p.arrivals); n > 0 {
			last = p.arrivals[n-1]
		}
		term := p.termAt
		p.mu.Unlock()
		if last.IsZero() || !term.IsZero() || time.Since(last) < p.every+2*time.Second || !dumped.Before(last) {
			continue
		}
		dumped = time.Now()
		d := fmt.Sprintf("no cycle for %v:\n%s", time.Since(last).Round(time.Millisecond), p.threadStates())
		p.mu.Lock()
		p.stalls = append(p.stalls, d)
		p.mu.Unlock()
	}
}

// watchProc samples /proc/PID/status every 100 ms until the process is gone.
func (p *pluginProc) watchProc() {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if s, ok := readProcStatus(p.pid); ok {
			p.mu.Lock()
			p.proc = append(p.proc, s)
			p.mu.Unlock()
		}
		select {
		case <-p.exited:
			return
		case <-tick.C:
		}
	}
}

func readProcStatus(pid int) (procSample, bool) {
	st, err := testkit.ReadProcStatus(pid)
	if err != nil {
		return procSample{}, false
	}
	threads, _ := st.Int("Threads")
	rss, _ := st.Int("VmRSS")
	return procSample{at: time.Now(), threads: int(threads), rssKB: int(rss)}, threads > 0
}

// waitCycles waits until n cycles are complete; it fails the test on a
// timeout or an early exit.
func (p *pluginProc) waitCycles(n int, timeout time.Duration) {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		got := p.complete
		p.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-p.newCycle:
		case <-p.exited:
			p.t.Fatalf("%s exited (%v) after %d cycles, want %d; stderr:\n%s\nstdout:\n%s", p.name, p.waitErr, got, n, p.stderr, p.output())
		case <-deadline.C:
			p.t.Fatalf("%s: %d cycles after %v, want %d; stderr:\n%s", p.name, got, timeout, n, p.stderr)
		}
	}
}

// cycles reports how many cycles are complete.
func (p *pluginProc) cycles() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.complete
}

// output is everything read so far.
func (p *pluginProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// completeOutput is the output up to the end of the last complete cycle,
// so a still running plugin can be checked without a half-read cycle.
func (p *pluginProc) completeOutput() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()[:p.completeAt]
}

func (p *pluginProc) arrivalTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.arrivals...)
}

func (p *pluginProc) procSamples() []procSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]procSample(nil), p.proc...)
}

// stop ends the plugin as Netdata does (SIGTERM), waits up to timeout for
// it to exit, then kills it. A thread the kernel holds asleep
// (backlog_wait_time) keeps the exiting process alive until it wakes, so
// the timeout must cover the configured wait time.
func (p *pluginProc) stop(timeout time.Duration) {
	p.stopped.Do(func() {
		if p.cmd == nil || p.cmd.Process == nil {
			return
		}
		start := time.Now()
		p.mu.Lock()
		p.termAt = start
		p.mu.Unlock()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			p.t.Logf("%s: exited %v after SIGTERM: %v", p.name, time.Since(start).Round(time.Millisecond), p.waitErr)
		case <-time.After(timeout):
			p.t.Errorf("%s: still running %v after SIGTERM; killing it", p.name, timeout)
			_ = p.cmd.Process.Kill()
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				p.t.Errorf("%s: not reaped 30 s after SIGKILL", p.name)
			}
		}
		if p.stdin != nil {
			p.stdin.Close()
		}
		p.mu.Lock()
		stalls := p.stalls
		p.mu.Unlock()
		for _, d := range stalls {
			p.t.Errorf("%s: %s", p.name, d)
		}
		if e := p.stderr.String(); e != "" {
			p.t.Logf("%s: stderr:\n%s", p.name, strings.TrimSpace(e))
		}
	})
}

// exitCode is the exit status after stop, or -1.
func (p *pluginProc) exitCode() int {
	select {
	case <-p.exited:
	default:
		return -1
	}
	if p.waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// maxProc is the highest thread count and RSS sampled.
func maxProc(samples []procSample) (threads, rssKB int) {
	for _, s := range samples {
		threads = max(threads, s.threads)
		rssKB = max(rssKB, s.rssKB)
	}
	return threads, rssKB
}

// runGaps are the times between successive cycle arrivals, and from the
// last one to the SIGTERM of stop (a plugin that stopped cycling before it
// would show no long gap between arrivals).
func (p *pluginProc) runGaps() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	g := gaps(p.arrivals)
	if n := len(p.arrivals); n > 0 && !p.termAt.IsZero() {
		g = append(g, p.termAt.Sub(p.arrivals[n-1]))
	}
	return g
}

// gaps are the times between successive cycle arrivals.
func gaps(arrivals []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(arrivals); i++ {
		out = append(out, arrivals[i].Sub(arrivals[i-1]))
	}
	return out
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// values are the non-gap values of one dimension with the cycle index of
// each (every chart is updated once per cycle, in order).
func values(s *stream, chartID, dimID string) map[int]int64 {
	out := map[int]int64{}
	for i, v := range s.series(chartID, dimID) {
		if v != nil {
			out[i] = *v
		}
	}
	return out
}

// seriesString formats a series compactly for logs; gaps are "-".
func seriesString(vs []*int64) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if v == nil {
			b.WriteByte('-')
		} else {
			b.WriteString(strconv.FormatInt(*v, 10))
		}
	}
	return b.String()
}

func durationsString(ds []time.Duration) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.2f", d.Seconds())
	}
	return b.String()
}

// snapshot is the output up to the last complete cycle and the arrival
// times of those cycles, taken together.
func (p *pluginProc) snapshot() (string, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()[:p.completeAt], append([]time.Time(nil), p.arrivals[:p.complete]...)
}

// threadStates describes where each thread of the process is, for a
// failure message: its state, kernel wait channel and kernel stack.
func (p *pluginProc) threadStates() string {
	var b strings.Builder
	dir := fmt.Sprintf("/proc/%d/task", p.pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	for _, task := range tasks {
		read := func(name string) string {
			c, err := os.ReadFile(filepath.Join(dir, task.Name(), name))
			if err != nil {
				return "?"
			}
			return strings.TrimSpace(string(c))
		}
		stat := read("stat")
		if i := strings.LastIndexByte(stat, ')'); i >= 0 && i+4 <= len(stat) {
			stat = stat[i+2 : i+3]
		}
		fmt.Fprintf(&b, "tid %s state %s wchan %s\n", task.Name(), stat, read("wchan"))
		if st := read("stack"); st != "?" && st != "" {
			for _, l := range strings.Split(st, "\n") {
				fmt.Fprintf(&b, "    %s\n", l)
			}
		}
	}
	return b.String()
}
