package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync/atomic"
)

// Runtime statistics on request, for operators: `kill -USR1 $(pidof
// audit.plugin)` makes the plugin write one line to stderr, which is
// Netdata's error log:
//
//	audit.plugin: self stats: goroutines=7 threads=8 fds=6 heap_inuse_kib=808 heap_live_kib=352 rss_kib=9104 held_queries=0
//
// held_queries is the number of status queries the kernel held asleep at the
// last chart update (each is one thread: a stalled backlog shows here and in
// threads); heap_live_kib is the heap found live by the runtime's last
// collection (it collects at least every two minutes), heap_inuse_kib and
// rss_kib include garbage not collected yet. Reading them forces no
// collection: the line costs the plugin nothing but the reading. A value
// that cannot be read (no /proc; heap_live_kib before the first collection)
// is -1.

type selfStats struct {
	goroutines int
	threads    int   // OS threads of the process
	fds        int   // open file descriptors (the one used to count them excluded)
	heapInuse  int64 // KiB in in-use heap spans (runtime.MemStats.HeapInuse)
	heapLive   int64 // KiB of heap found live by the last collection
	rss        int64 // resident set size, KiB
	held       int   // status queries held asleep in the kernel
}

func (s selfStats) String() string {
	return fmt.Sprintf("self stats: goroutines=%d threads=%d fds=%d heap_inuse_kib=%d heap_live_kib=%d rss_kib=%d held_queries=%d",
		s.goroutines, s.threads, s.fds, s.heapInuse, s.heapLive, s.rss, s.held)
}

func readSelfStats(held int) selfStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(live)
	s := selfStats{
		goroutines: runtime.NumGoroutine(),
		threads:    -1,
		fds:        -1,
		heapInuse:  int64(ms.HeapInuse / 1024),
		heapLive:   -1,
		rss:        -1,
		held:       held,
	}
	// Before the first collection nothing was found live yet: unknown.
	if live[0].Value.Kind() == metrics.KindUint64 && live[1].Value.Kind() == metrics.KindUint64 && live[1].Value.Uint64() > 0 {
		s.heapLive = int64(live[0].Value.Uint64() / 1024)
	}
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.fds = len(entries) - 1 // the directory being read
	}
	if f, err := os.Open("/proc/self/status"); err == nil {
		s.threads, s.rss = parseProcStatus(f)
		f.Close()
	}
	return s
}

// parseProcStatus reads Threads and VmRSS (kB) from /proc/PID/status; -1
// for a field it does not find.
func parseProcStatus(r io.Reader) (threads int, rssKiB int64) {
	f := procStatusFields(r)
	threads, rssKiB = -1, -1
	if n, err := strconv.Atoi(f["Threads"]); err == nil {
		threads = n
	}
	if n, err := strconv.ParseInt(f["VmRSS"], 10, 64); err == nil {
		rssKiB = n
	}
	return threads, rssKiB
}

// procStatusFields is the plugin's one reader of /proc/PID/status: each
// field's first word ("Threads" 8, "VmRSS" 9104 (kB), "CapBnd" a hex mask).
func procStatusFields(r io.Reader) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(val); ok && len(f) > 0 {
			if _, seen := m[key]; !seen {
				m[key] = f[0]
			}
		}
	}
	return m
}

// selfCounters are what the plugin counts for selfStats, which reads the
// rest from the runtime and /proc: the queries the kernel held asleep at the
// last chart update (the collector sets it, the status Function reads it).
type selfCounters struct {
	held atomic.Int32
}

func (c *selfCounters) setHeld(n int) { c.held.Store(int32(n)) }

func (c *selfCounters) heldQueries() int { return int(c.held.Load()) }

// logOn writes one line of statistics to log for each signal on sig until
// ctx is done.
func (c *selfCounters) logOn(ctx context.Context, sig <-chan os.Signal, log *stateLog) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			log.printf("%s", readSelfStats(c.heldQueries()))
		}
	}
}
