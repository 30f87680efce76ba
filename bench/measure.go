package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"auditplugin/internal/testkit"
)

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
	st, err := testkit.ReadProcStatus(pid)
	if err != nil {
		return 0, 0, err
	}
	rssKB, ok1 := st.Int("VmRSS")
	hwmKB, ok2 := st.Int("VmHWM")
	if !ok1 || !ok2 || rssKB == 0 || hwmKB == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status has no VmRSS/VmHWM", pid)
	}
	return rssKB << 10, hwmKB << 10, nil
}
