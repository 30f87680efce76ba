package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"

	"golang.org/x/sys/unix"
)

// DefaultRate is the plugin's default sampling: -sample-interval 250ms.
const DefaultRate = 4 // queries per second

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
	b.ReportMetric(CorePercent(perOp*DefaultRate), "cpu-%core@4Hz")
}

// CorePercent converts CPU microseconds per second into percent of one core.
func CorePercent(usPerSecond float64) float64 { return usPerSecond / 1e6 * 100 }

// ProcCPU reads a process's CPU time two ways: utime+stime of
// /proc/PID/stat (clock ticks, what top shows) and the sum of
// /proc/PID/task/*/schedstat (nanoseconds on a CPU, per thread).
func ProcCPU(pid int) (ticks int64, onCPU time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command, which may hold spaces, in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited
		}
		if ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64); err == nil {
			onCPU += time.Duration(ns)
		}
	}
	return ut + st, onCPU, nil
}

// ClockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on Linux.
const ClockTicks = 100

// ProcMemory reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func ProcMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q", k, v)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS/VmHWM", pid)
	}
	return rss, hwm, sc.Err()
}
