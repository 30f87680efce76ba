package main

import (
	"errors"

	"golang.org/x/sys/unix"

	"auditplugin/netlink"
)

// collect turns one window into dimension values; a dimension missing from
// the map is sent as a gap. Charts about the kernel's status have no values
// when the window has no sample; the monitor's own charts always have.
func collect(w window, processExists func(pid uint32) bool) map[string]int64 {
	v := map[string]int64{
		"query_held_for": w.penalty.LongestHold.Microseconds(),
		"queries_held":   int64(w.penalty.Held),
	}
	if w.samples == 0 {
		return v
	}
	v["query_reply"] = w.maxReply.Microseconds()

	s := w.last
	v["backlog"] = int64(s.Backlog)
	v["backlog_peak"] = int64(w.peakBacklog)
	v["backlog_limit"] = int64(s.BacklogLimit)
	v["backlog_unlimited"] = bool01(s.BacklogLimit == 0)
	if s.BacklogLimit > 0 {
		v["utilization"] = utilizationBP(s.Backlog, s.BacklogLimit)
	}
	if w.peakUtilBP >= 0 {
		v["utilization_peak"] = w.peakUtilBP
	}
	if w.overflowOK {
		v["time_to_overflow"] = w.overflowIn.Milliseconds()
	}
	v["lost"] = int64(w.counters.lost)

	v["enabled_disabled"] = bool01(s.Enabled == netlink.Disabled)
	v["enabled_enabled"] = bool01(s.Enabled == netlink.Enabled)
	v["enabled_immutable"] = bool01(s.Enabled == netlink.Immutable)
	v["failure_silent"] = bool01(s.Failure == netlink.FailureSilent)
	v["failure_printk"] = bool01(s.Failure == netlink.FailurePrintk)
	v["failure_panic"] = bool01(s.Failure == netlink.FailurePanic)
	v["daemon_registered"] = bool01(s.PID != 0)
	v["daemon_running"] = bool01(s.PID != 0 && processExists(s.PID))
	v["rate_limit"] = int64(s.RateLimit)

	if s.Has(netlink.FieldBacklogWaitTime) {
		v["backlog_wait_time"] = int64(s.BacklogWaitTime)
	}
	if s.Has(netlink.FieldBacklogWaitTimeActual) {
		v["backlog_wait_stall"] = int64(w.counters.waitActual)
	}
	if s.Has(netlink.FieldBacklogMaxDepth) {
		v["backlog_max_depth"] = int64(s.BacklogMaxDepth)
	}
	return v
}

func bool01(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// pidMaxLimit is the kernel's highest possible pid (PID_MAX_LIMIT, 2^22).
const pidMaxLimit = 1 << 22

// procExists reports whether a process with this pid exists, by sending it
// signal 0 (which sends nothing): EPERM means it exists but is not ours
// (auditd runs as root), ESRCH that it is gone. /proc cannot tell: with
// hidepid=2 other users' processes are invisible there. The plugin is in the
// initial PID namespace (the kernel refuses audit status otherwise), so the
// kernel's pid is ours. A pid out of range is never passed to kill, where 0
// or a negative value would mean a process group.
func procExists(pid uint32) bool {
	if pid == 0 || pid > pidMaxLimit {
		return false
	}
	err := unix.Kill(int(pid), 0)
	return err == nil || errors.Is(err, unix.EPERM)
}
