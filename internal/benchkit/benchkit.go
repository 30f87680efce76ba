// Package benchkit holds what the benchmarks of bench and plugin share:
// the kernel lock with a quiet audit backlog, this process's CPU time, the
// latency and CPU report that bench/run.sh reads, and the plugin's default
// sampling rate read from the plugin itself.
package benchkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/testkit"

	"golang.org/x/sys/unix"
)

// quietWait bounds how long LockQuiet waits for the backlog to drain.
const quietWait = 30 * time.Second

// LockQuiet takes the machine-wide kernel test lock for the rest of b (no
// kernel test may overflow the backlog meanwhile) and waits until the
// kernel's audit backlog is empty: with a backlog over its limit and
// backlog_wait_time > 0 every query sleeps in the kernel, and the numbers
// would measure that instead of us. It skips without root (see
// kerneltest.Lock) and when the kernel cannot answer.
//
// Under bench/run.sh, which holds the lock for its whole run so that other
// kernel tests cannot slip in between two benchmarks, it checks that the
// holder is one of its ancestors (LockHeldEnv) instead of waiting for it.
func LockQuiet(b testing.TB) kerneltest.Status {
	b.Helper()
	if os.Getenv(LockHeldEnv) == "1" && ancestorHoldsLock() {
		kerneltest.RequireRoot(b)
		if _, err := os.Stat(kerneltest.RecoveryFile); err == nil {
			b.Fatalf("%s exists: a killed kernel test left the audit state changed; run go run ./cmd/audit-restore", kerneltest.RecoveryFile)
		}
	} else {
		kerneltest.Lock(b)
	}
	deadline := time.Now().Add(quietWait)
	for {
		st, err := kerneltest.ReadStatus()
		if err != nil {
			b.Skipf("the kernel does not answer AUDIT_GET here: %v", err)
		}
		if st.Backlog == 0 {
			return st
		}
		if time.Now().After(deadline) {
			b.Fatalf("the audit backlog is not quiet after %v (%s); a benchmark now would measure the sender penalty", quietWait, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// LockHeldEnv is set to 1 by bench/run.sh, which holds kerneltest.LockFile
// while it runs the benchmarks and names itself in it.
const LockHeldEnv = "AUDITPLUGIN_BENCH_LOCK_HELD"

// ancestorHoldsLock reports whether kerneltest.LockFile is locked by a
// process that names itself in the file ("pid N ...") and is an ancestor of
// this one.
func ancestorHoldsLock() bool {
	f, err := os.Open(kerneltest.LockFile)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return false // nobody holds it
	}
	var holder int
	if _, err := fmt.Fscanf(f, "pid %d ", &holder); err != nil || holder <= 1 {
		return false
	}
	for pid := os.Getppid(); pid > 1; pid = parentOf(pid) {
		if pid == holder {
			return true
		}
	}
	return false
}

// parentOf reads a process's parent pid from /proc/PID/stat (0 if unknown).
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// CPUTime is the CPU time (user + system) this process used so far, every
// thread included; with children it adds that of waited-for children.
func CPUTime(children bool) time.Duration {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	d := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if children {
		_ = unix.Getrusage(unix.RUSAGE_CHILDREN, &ru)
		d += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return d
}

// Report adds the metrics run.sh reads to a benchmark of one query per op:
// latency percentiles, CPU time per query, and what that CPU time costs at
// the plugin's default rate, in percent of one core.
func Report(b *testing.B, lat []time.Duration, cpu time.Duration) {
	if len(lat) == 0 {
		return
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	pct := func(p float64) float64 {
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
	b.ReportMetric(float64(s[len(s)-1].Nanoseconds())/1e3, "max-us")
	perOp := float64(cpu.Nanoseconds()) / 1e3 / float64(len(lat))
	b.ReportMetric(perOp, "cpu-us/op")
	// The metric keeps its name for run.sh; the rate is the plugin's own.
	b.ReportMetric(perOp*PluginRate(b)/1e4, "cpu-%core@4Hz")
}

var pluginRate struct {
	sync.Once
	perSecond float64
	err       error
}

// sampleDefault finds the -sample-interval default in the plugin's -h.
var sampleDefault = regexp.MustCompile(`-sample-interval duration\n[^\n]*\(default ([^)]+)\)`)

// PluginRate is the plugin's default number of status queries a second,
// 1 / its -sample-interval default, read from the -h of
// $AUDIT_PLUGIN_BINARY or of a fresh build: no copy of the default lives
// here.
func PluginRate(b testing.TB) float64 {
	b.Helper()
	pluginRate.Do(func() {
		bin := os.Getenv("AUDIT_PLUGIN_BINARY")
		if bin == "" {
			dir, err := os.MkdirTemp("", "auditplugin-benchkit-")
			if err != nil {
				pluginRate.err = err
				return
			}
			defer os.RemoveAll(dir)
			if bin, err = testkit.BuildPluginIn(dir); err != nil {
				pluginRate.err = err
				return
			}
		}
		out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits non-zero
		m := sampleDefault.FindSubmatch(out)
		if m == nil {
			pluginRate.err = fmt.Errorf("%s -h names no -sample-interval default:\n%s", bin, out)
			return
		}
		d, err := time.ParseDuration(string(m[1]))
		if err != nil || d <= 0 {
			pluginRate.err = fmt.Errorf("%s -h: -sample-interval default %q: %v", bin, m[1], err)
			return
		}
		pluginRate.perSecond = float64(time.Second) / float64(d)
	})
	if pluginRate.err != nil {
		b.Fatal(pluginRate.err)
	}
	return pluginRate.perSecond
}
