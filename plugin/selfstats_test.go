package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"auditplugin/netlink/nltest"
)

var selfStatsLine = regexp.MustCompile(`(?m)^audit\.plugin: self stats: goroutines=(\d+) threads=(\d+) fds=(\d+) heap_inuse_kib=(\d+) heap_live_kib=(-1|\d+) rss_kib=(\d+) held_queries=(\d+)$`)

func TestParseProcStatus(t *testing.T) {
	threads, rss := parseProcStatus(strings.NewReader("Name:\taudit.plugin\nVmRSS:\t    9104 kB\nThreads:\t8\nSigQ:\t0/94000\n"))
	if threads != 8 || rss != 9104 {
		t.Errorf("threads %d rss %d, want 8 and 9104", threads, rss)
	}
	threads, rss = parseProcStatus(strings.NewReader("Name:\tkthreadd\nThreads:\tmany\n"))
	if threads != -1 || rss != -1 {
		t.Errorf("unreadable fields: threads %d rss %d, want -1 -1", threads, rss)
	}
}

func TestReadSelfStats(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	before := readSelfStats(3)
	if before.goroutines < 1 || before.threads < 1 || before.fds < 3 || before.heapInuse <= 0 ||
		before.heapLive < -1 || before.rss <= 0 || before.held != 3 {
		t.Fatalf("implausible: %+v", before)
	}
	// Three more descriptors and goroutines are seen as three more.
	var files []*os.File
	for i := 0; i < 3; i++ {
		f, err := os.Create(filepath.Join(t.TempDir(), strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	stop := make(chan struct{})
	started := make(chan struct{}, 3)
	for i := 0; i < 3; i++ {
		go func() { started <- struct{}{}; <-stop }()
	}
	for i := 0; i < 3; i++ {
		<-started
	}
	low := runtime.NumGoroutine()
	after := readSelfStats(0)
	high := runtime.NumGoroutine()
	close(stop)
	for _, f := range files {
		f.Close()
	}
	if after.fds != before.fds+3 {
		t.Errorf("fds %d after opening 3 files, was %d", after.fds, before.fds)
	}
	// Goroutines of an earlier test may still be ending: compare with the
	// runtime's count around the read.
	if after.goroutines < min(low, high) || after.goroutines > max(low, high) || after.goroutines < 4 {
		t.Errorf("goroutines %d, runtime counted %d and %d around the read", after.goroutines, low, high)
	}
	if line := after.String(); strings.Contains(line, "\n") || !selfStatsLine.MatchString("audit.plugin: "+line) {
		t.Errorf("line %q", line)
	}
}

// The statistics force no garbage collection (the line is for operators,
// and must not change what it measures or cost a collection).
func TestReadSelfStatsForcesNoGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection unless forced
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 3 {
		readSelfStats(0)
	}
	runtime.ReadMemStats(&after)
	if n := after.NumForcedGC - before.NumForcedGC; n != 0 || after.NumGC != before.NumGC {
		t.Errorf("reading the statistics 3 times ran %d collections, %d of them forced; want none", after.NumGC-before.NumGC, n)
	}
}

// SIGUSR1 to the process makes serve log one statistics line per signal,
// with the queries the kernel holds; the plugin keeps running.
func TestSelfStatsOnSIGUSR1(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	// A kernel that queues each reply and then holds the sender asleep, as
	// Linux does with a full backlog and backlog_wait_time > 0.
	release := make(chan struct{})
	defer close(release)
	var conn *nltest.Conn
	conn = nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		conn.Inject(nltest.Reply(req, steadyPayload))
		if req.Header.Seq > 1 {
			<-release
		}
		return nil, nil
	})
	h := newHarness(kernel(conn, 4))
	feed, exit := h.serveStdin()
	defer feed.Close()
	// serve has installed its handlers once output appears; two more
	// updates see a held query.
	h.stdout.wait(t, 4, 5*time.Second)

	for i := 1; i <= 2; i++ {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(selfStatsLine.FindAllString(h.stderr.String(), -1)) < i {
			if time.Now().After(deadline) {
				t.Fatalf("no statistics line %d within 2 s of SIGUSR1; stderr: %q", i, h.stderr)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	m := selfStatsLine.FindAllStringSubmatch(h.stderr.String(), -1)
	if len(m) != 2 {
		t.Fatalf("%d statistics lines, want 2: %q", len(m), h.stderr)
	}
	if held, _ := strconv.Atoi(m[1][7]); held < 1 || held > 4 {
		t.Errorf("held_queries=%d, want 1..4 (the fake holds every query after the first; -max-held-queries 4): %s", held, m[1][0])
	}
	if g, _ := strconv.Atoi(m[1][1]); g < 5 {
		t.Errorf("goroutines=%d: fewer than serve, run, the sampler, the receiver and this logger", g)
	}

	fmt.Fprintln(feed, "QUIT")
	if code := waitExit(t, exit, 2*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	checkStream(t, h.stdout.String())
}
