package bench

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/benchkit"
)

// Defaults of the whole-plugin benchmark; BENCH_PLUGIN_SECONDS and
// BENCH_PLUGIN_STARTS change them.
const (
	defaultRunSeconds = 20
	defaultStarts     = 5
	warmup            = 2 * time.Second // after the first data, before measuring
	firstDataTimeout  = 10 * time.Second
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// pluginBinary returns $AUDIT_PLUGIN_BINARY, or builds the plugin the way it
// ships: static, trimmed, without symbol tables.
func pluginBinary(b *testing.B) string { return builtBinary(b, "AUDIT_PLUGIN_BINARY", "../plugin") }

// minloopBinary returns $AUDIT_MINLOOP_BINARY, or builds bench/minloop as
// the plugin is built.
func minloopBinary(b *testing.B) string { return builtBinary(b, "AUDIT_MINLOOP_BINARY", "./minloop") }

// builtBinary returns $env, or builds pkg static and trimmed into a temporary directory.
func builtBinary(b *testing.B, env, pkg string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		b.Skipf("no go command to build %s with; set %s", pkg, env)
	}
	out := filepath.Join(b.TempDir(), filepath.Base(pkg))
	cmd := exec.Command(gobin, "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	return out
}

// running is the plugin started as Netdata starts it: "audit.plugin 1",
// stdin a pipe it keeps open, stdout read line by line.
type running struct {
	cmd     *exec.Cmd
	start   time.Time
	stdin   io.WriteCloser
	stderr  bytes.Buffer
	lines   chan line
	scanned chan struct{}

	mu      sync.Mutex
	updates int // BEGIN linux_audit.backlog blocks
	gaps    int // SET backlog = (no status in that update)
}

type line struct {
	at   time.Time
	text string
}

func startPlugin(b *testing.B, bin string) *running {
	b.Helper()
	r := &running{cmd: exec.Command(bin, "1"), lines: make(chan line, 64), scanned: make(chan struct{})}
	r.cmd.Stderr = &r.stderr
	var err error
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(r.scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := line{time.Now(), sc.Text()}
			r.mu.Lock()
			switch l.text {
			case "BEGIN linux_audit.backlog":
				r.updates++
			case "SET backlog =":
				r.gaps++
			default:
				if strings.HasPrefix(l.text, "BEGIN linux_audit.backlog ") {
					r.updates++
				}
			}
			r.mu.Unlock()
			select {
			case r.lines <- l:
			default: // only the first lines are read
			}
		}
	}()
	return r
}

// firstData waits for the first CHART and the first BEGIN line and returns
// how long after the start each came.
func (r *running) firstData(b *testing.B) (chart, begin time.Duration) {
	b.Helper()
	timeout := time.After(firstDataTimeout)
	for {
		select {
		case l := <-r.lines:
			if chart == 0 && strings.HasPrefix(l.text, "CHART ") {
				chart = l.at.Sub(r.start)
			}
			if strings.HasPrefix(l.text, "BEGIN ") {
				return chart, l.at.Sub(r.start)
			}
			if l.text == "DISABLE" {
				b.Fatalf("the plugin disabled itself: %s", r.stderr.String())
			}
		case <-timeout:
			b.Fatalf("no data %v after the start; stderr: %s", firstDataTimeout, r.stderr.String())
		}
	}
}

// stop sends SIGTERM as Netdata does and expects exit 0 within a second.
func (r *running) stop(b *testing.B) {
	b.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { <-r.scanned; done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			b.Errorf("plugin exit after SIGTERM: %v; stderr: %s", err, r.stderr.String())
		}
	case <-time.After(time.Second):
		_ = r.cmd.Process.Kill()
		<-done
		b.Errorf("plugin still running 1 s after SIGTERM")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkPlugin runs the built plugin on the real kernel at update_every 1
// with the default sampling (250 ms) and reports what it costs: CPU per
// second in percent of one core (threads' schedstat; /proc/PID/stat ticks as
// a cross-check), VmRSS and VmHWM at the end, the binary's size, and the
// time from the start to the first CHART and to the first BEGIN (Netdata's
// first data; the plugin aligns updates to whole seconds, so up to 1 s of it
// is waiting for the next one). The floor it is measured against runs
// beside it over the same seconds: bench/minloop, the same 4 AUDIT_GET a
// second done synchronously on one goroutine, as Go runs it by default and
// on one P (minloop*-cpu-%core, and the plugin's ratios x-minloop*). It
// ignores b.N: one run takes about
// BENCH_PLUGIN_SECONDS (20) plus BENCH_PLUGIN_STARTS (5) short starts.
func BenchmarkPlugin(b *testing.B) {
	bin := pluginBinary(b)
	floor := minloopBinary(b)
	fi, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	benchkit.LockQuiet(b)

	// Updates are aligned to whole seconds of the clock: each start is at a
	// random phase of the second, and late is how long after its whole
	// second the first BEGIN came.
	var charts, begins []time.Duration
	var late time.Duration
	for range envInt("BENCH_PLUGIN_STARTS", defaultStarts) {
		time.Sleep(time.Duration(rand.Int64N(int64(time.Second))))
		r := startPlugin(b, bin)
		c, d := r.firstData(b)
		r.stop(b)
		charts, begins = append(charts, c), append(begins, d)
		at := r.start.Add(d)
		late = max(late, at.Sub(at.Truncate(time.Second)))
	}

	runFor := time.Duration(envInt("BENCH_PLUGIN_SECONDS", defaultRunSeconds)) * time.Second
	r := startPlugin(b, bin)
	r.firstData(b)
	// Two floors: the loop as the issue measured it (Go's default
	// GOMAXPROCS), and on one P, as the plugin runs (more Ps add idle
	// spinning to a program this quiet).
	floors := []*floorRun{startFloor(b, floor), startFloor(b, floor, "GOMAXPROCS=1")}
	time.Sleep(warmup)
	pid := r.cmd.Process.Pid
	ticks0, ns0, err := ProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range floors {
		f.ns0 = f.cpu(b)
	}
	r.mu.Lock()
	updates0, gaps0 := r.updates, r.gaps
	r.mu.Unlock()
	t0 := time.Now()
	time.Sleep(runFor)
	ticks1, ns1, err := ProcCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range floors {
		f.ns1 = f.cpu(b)
	}
	elapsed := time.Since(t0)
	rss, hwm, err := ProcMemory(pid)
	if err != nil {
		b.Fatal(err)
	}
	r.mu.Lock()
	updates, gaps := r.updates-updates0, r.gaps-gaps0
	r.mu.Unlock()
	r.stop(b)

	if want := int(elapsed / time.Second); updates < want-1 || gaps > 0 {
		b.Errorf("%d updates with %d gaps in %v, want about %d without gaps; stderr: %s", updates, gaps, elapsed, want, r.stderr.String())
	}
	if r.stderr.Len() > 0 {
		b.Logf("plugin stderr: %s", r.stderr.String())
	}
	b.Logf("%d updates in %v; CPU %v on CPU (schedstat), %d ticks (stat); bench/minloop %v, on one P %v", updates, elapsed.Round(time.Millisecond),
		ns1-ns0, ticks1-ticks0, floors[0].ns1-floors[0].ns0, floors[1].ns1-floors[1].ns0)

	perSecond := func(d time.Duration) float64 { return float64(d.Microseconds()) / elapsed.Seconds() }
	b.ReportMetric(CorePercent(perSecond(ns1-ns0)), "cpu-%core")
	b.ReportMetric(CorePercent(perSecond(time.Duration(ticks1-ticks0)*time.Second/ClockTicks)), "cpu-%core-ticks")
	// Ratios of the same seconds: the machine's load varies between
	// rounds, and affects the plugin and its floors alike within one.
	for i, unit := range []string{"minloop", "minloop1"} {
		f := floors[i]
		b.ReportMetric(CorePercent(perSecond(f.ns1-f.ns0)), unit+"-cpu-%core")
		if f.ns1 > f.ns0 {
			b.ReportMetric(float64(ns1-ns0)/float64(f.ns1-f.ns0), "x-"+unit)
		}
	}
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(hwm)/(1<<20), "hwm-MiB")
	b.ReportMetric(float64(fi.Size())/(1<<20), "binary-MiB")
	b.ReportMetric(ms(median(charts)), "first-chart-ms")
	b.ReportMetric(ms(median(begins)), "first-begin-ms")
	b.ReportMetric(ms(slices.Max(begins)), "first-begin-max-ms")
	b.ReportMetric(ms(late), "first-begin-late-ms")
	b.ReportMetric(0, "ns/op") // one run, not an operation
}

// floorRun is bench/minloop running beside the plugin over the same seconds.
type floorRun struct {
	cmd      *exec.Cmd
	stderr   bytes.Buffer
	ns0, ns1 time.Duration // its CPU time at the start and the end
}

// startFloor starts bench/minloop with env added; it is killed when b ends.
func startFloor(b *testing.B, bin string, env ...string) *floorRun {
	f := &floorRun{cmd: exec.Command(bin)}
	f.cmd.Env = append(os.Environ(), env...)
	f.cmd.Stderr = &f.stderr
	if err := f.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.cmd.Process.Kill(); _ = f.cmd.Wait() })
	return f
}

func (f *floorRun) cpu(b *testing.B) time.Duration {
	_, ns, err := ProcCPU(f.cmd.Process.Pid)
	if err != nil {
		b.Fatalf("bench/minloop %v: %v; stderr: %s", f.cmd.Env[len(os.Environ()):], err, f.stderr.String())
	}
	return ns
}
