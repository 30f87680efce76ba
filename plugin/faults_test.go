package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/testkit"
	"auditplugin/netlink"
	"auditplugin/netlink/nltest"
)

// Fault injection through the fake kernel: each scenario runs the whole
// plugin healthy, then under one fault, then healthy again, and checks that
//   - the plugin never stops (run returns 0 only when cancelled),
//   - the stream passes checkStream and every update sets every dimension,
//   - an update is a gap exactly when no status arrived in its window, and
//     every value is fresh (a status of that window, newer than the last),
//   - it recovers: fresh values after the fault,
//   - stderr says so once per change of state, not once per cycle.

// faultSampling is the sampling interval (and query deadline) of these
// tests: two or three samples per testInterval window.
const faultSampling = 40 * time.Millisecond

// faultSlack absorbs the time between a sample and the update that reports it.
const faultSlack = 10 * time.Millisecond

// bogusBacklog marks statuses that must never be charted (duplicates,
// stale or early replies); real replies count 1, 2, 3, … in their backlog.
const bogusBacklog = 999_999

// faultKernel answers AUDIT_GET like a 5.9+ kernel whose backlog field
// counts the replies it sent, unless a fault is in force.
type faultKernel struct {
	mu      sync.Mutex
	fault   fault
	served  uint32
	conns   []*nltest.Conn
	dead    *nltest.Conn  // sends on it fail with EBADF for good
	samples []faultSample // every Status call's result, as the sampler saw it
	limit   *netlink.SenderLimit
}

// fault answers one request on conn; handled false answers normally.
type fault func(k *faultKernel, conn *nltest.Conn, req syscall.NetlinkMessage) (replies [][]byte, handled bool, err error)

type faultSample struct {
	at      time.Time
	ok      bool
	backlog uint32
}

func (k *faultKernel) setFault(f fault) {
	k.mu.Lock()
	k.fault = f
	k.mu.Unlock()
}

// good is the next healthy reply to req.
func (k *faultKernel) good(req syscall.NetlinkMessage) []byte {
	k.mu.Lock()
	k.served++
	n := k.served
	k.mu.Unlock()
	return nltest.Reply(req, statusWithBacklog(n))
}

func statusWithBacklog(n uint32) []byte {
	return nltest.StatusPayload(0, 1, 1, 0, 0, 10_000_000, 0, n, 0x7f, 15000, 0)
}

func bogusReply(req syscall.NetlinkMessage, seq uint32) []byte {
	return nltest.Message(req.Header.Type, 0, seq, 0, statusWithBacklog(bogusBacklog))
}

// newClient dials a new fake socket each time, as kernelClient opens a new
// netlink socket, and records what every Status call returned.
func (k *faultKernel) newClient() (statusClient, error) {
	var conn *nltest.Conn
	conn = nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		k.mu.Lock()
		f, dead := k.fault, conn == k.dead
		k.mu.Unlock()
		if dead {
			return nil, syscall.EBADF
		}
		if f != nil {
			if replies, handled, err := f(k, conn, req); handled {
				return replies, err
			}
		}
		return [][]byte{k.good(req)}, nil
	})
	k.mu.Lock()
	k.conns = append(k.conns, conn)
	if k.limit == nil {
		k.limit = netlink.NewSenderLimit(4) // one for the plugin's life, as kernelClient's
	}
	limit := k.limit
	k.mu.Unlock()
	return &recordingClient{statusClient: netlink.New(conn, limit), k: k}, nil
}

func (k *faultKernel) dials() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.conns)
}

type recordingClient struct {
	statusClient
	k *faultKernel
}

func (c *recordingClient) Status(ctx context.Context) (netlink.Status, error) {
	st, err := c.statusClient.Status(ctx)
	c.k.mu.Lock()
	c.k.samples = append(c.k.samples, faultSample{time.Now(), err == nil, st.Backlog})
	c.k.mu.Unlock()
	return st, err
}

// stampedLog is stderr with the time of each line.
type stampedLog struct {
	mu    sync.Mutex
	lines []stampedLine
}

type stampedLine struct {
	at   time.Time
	text string
}

func (l *stampedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		l.lines = append(l.lines, stampedLine{time.Now(), s})
	}
	return len(p), nil
}

func (l *stampedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, s := range l.lines {
		b.WriteString(s.text + "\n")
	}
	return b.String()
}

// between returns the lines containing word logged in [from, to).
func (l *stampedLog) between(word string, from, to time.Time) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.lines {
		if strings.Contains(s.text, word) && !s.at.Before(from) && s.at.Before(to) {
			out = append(out, s.text)
		}
	}
	return out
}

type faultScenario struct {
	name  string
	fault fault
	// onStart runs when the fault starts (closing the socket under the plugin).
	onStart func(k *faultKernel)
	// noData: no status can arrive while the fault lasts, so updates become
	// gaps, one failure is logged (containing logs) and one recovery.
	// Otherwise statuses keep arriving: no gaps and nothing logged.
	noData bool
	logs   string
	// reconnect: the plugin must open a new socket, once, and log it once.
	reconnect bool
}

const (
	healthyBefore = 3 // updates before the fault
	faultUpdates  = 5 // updates the fault lasts
	healthyAfter  = 4 // updates after it
)

func TestFaults(t *testing.T) {
	// Helpers for faults that replace the reply.
	replyWith := func(build func(k *faultKernel, conn *nltest.Conn, req syscall.NetlinkMessage) [][]byte) fault {
		return func(k *faultKernel, conn *nltest.Conn, req syscall.NetlinkMessage) ([][]byte, bool, error) {
			return build(k, conn, req), true, nil
		}
	}
	scenarios := []faultScenario{
		{name: "no reply", noData: true, logs: "no audit status reply",
			fault: replyWith(func(*faultKernel, *nltest.Conn, syscall.NetlinkMessage) [][]byte { return nil })},
		{name: "late replies", noData: true, logs: "no audit status reply",
			// Each request is answered only when the next one comes, after
			// its query gave up: a late reply must not answer a newer query.
			fault: func() fault {
				var mu sync.Mutex
				var held []byte
				return replyWith(func(k *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
					mu.Lock()
					defer mu.Unlock()
					late := held
					held = bogusReply(req, req.Header.Seq)
					if late == nil {
						return nil
					}
					return [][]byte{late}
				})
			}()},
		{name: "truncated datagram", noData: true, logs: "no audit status reply",
			fault: replyWith(func(k *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				return [][]byte{bogusReply(req, req.Header.Seq)[:30]} // header says 60 bytes
			})},
		{name: "truncated status", noData: true, logs: "malformed",
			fault: replyWith(func(k *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				return [][]byte{nltest.Reply(req, statusWithBacklog(bogusBacklog)[:20])}
			})},
		{name: "stray sender", noData: true, logs: "no audit status reply",
			fault: replyWith(func(k *faultKernel, conn *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				conn.InjectError(fmt.Errorf("%w: from port id 4242", netlink.ErrStray))
				return nil
			})},
		{name: "ENOBUFS drops the reply", noData: true, logs: "no audit status reply",
			fault: replyWith(func(k *faultKernel, conn *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				conn.InjectError(syscall.ENOBUFS)
				return nil
			})},
		{name: "ENOBUFS between replies",
			fault: replyWith(func(k *faultKernel, conn *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				conn.InjectError(syscall.ENOBUFS)
				return [][]byte{k.good(req)}
			})},
		{name: "EINTR storm",
			fault: replyWith(func(k *faultKernel, conn *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				for range 200 {
					conn.InjectError(syscall.EINTR)
				}
				return [][]byte{k.good(req)}
			})},
		{name: "duplicated replies",
			fault: replyWith(func(k *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				good := k.good(req)
				dup := bogusReply(req, req.Header.Seq)
				return [][]byte{nltest.Datagram(good, dup), dup, good}
			})},
		{name: "out of order",
			// Replies to the previous and the next query around this one's:
			// neither may answer it, and the next query must get its own.
			fault: replyWith(func(k *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				s := req.Header.Seq
				return [][]byte{nltest.Datagram(bogusReply(req, s+1), bogusReply(req, s-1)), bogusReply(req, s+1), k.good(req), bogusReply(req, s-1)}
			})},
		{name: "64 KiB datagram",
			fault: replyWith(func(k *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				big := nltest.Message(1300, 0, 0, 0, make([]byte, 64<<10)) // an AUDIT_SYSCALL record
				return [][]byte{nltest.Datagram(big, k.good(req), big)}
			})},
		{name: "longer status",
			// A future kernel's 4 KiB struct audit_status: the known fields
			// are read, the rest ignored.
			fault: replyWith(func(k *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) [][]byte {
				r := k.good(req)
				payload := append(r[syscall.NLMSG_HDRLEN:syscall.NLMSG_HDRLEN+44:syscall.NLMSG_HDRLEN+44], make([]byte, 4096-44)...)
				return [][]byte{nltest.Reply(req, payload)}
			})},
		{name: "socket closed (receive EBADF)", reconnect: true, logs: "closed",
			onStart: func(k *faultKernel) {
				k.mu.Lock()
				conn := k.conns[len(k.conns)-1]
				k.mu.Unlock()
				conn.Close()
			}},
		{name: "socket closed (send EBADF first)", reconnect: true, logs: "closed",
			// The descriptor is gone but the receiver has not noticed: the
			// send fails first, and must lead to a reconnect too.
			onStart: func(k *faultKernel) {
				k.mu.Lock()
				k.dead = k.conns[len(k.conns)-1]
				k.mu.Unlock()
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runFault(t, sc) })
	}
}

var backlogSet = regexp.MustCompile(`(?m)^SET backlog =(?: (\d+))?$`)

// cycleBacklog returns the backlog an update (one write) set, and false
// for a gap.
func cycleBacklog(t *testing.T, data string) (uint32, bool) {
	t.Helper()
	m := backlogSet.FindStringSubmatch(data)
	if m == nil {
		t.Fatalf("update without SET backlog:\n%s", data)
	}
	if m[1] == "" {
		return 0, false
	}
	v, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(v), true
}

func runFault(t *testing.T, sc faultScenario) {
	k := &faultKernel{}
	h := newHarness(k.newClient)
	h.p.opts.sampleInterval = faultSampling
	stderr := &stampedLog{}
	h.p.log = newStateLog(stderr)
	exit, cancel := h.start(t)

	h.stdout.wait(t, 1+healthyBefore, 5*time.Second)
	f0 := time.Now()
	if sc.onStart != nil {
		sc.onStart(k)
	}
	k.setFault(sc.fault)
	time.Sleep(faultUpdates * testInterval)
	f1 := time.Now()
	k.setFault(nil)
	// Updates written from now on whose window lies wholly after the fault.
	n := len(h.stdout.snapshot())
	h.stdout.wait(t, n+1+healthyAfter, 5*time.Second)
	cancel()
	if code := waitExit(t, exit, 2*time.Second); code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", code, stderr)
	}

	writes := h.stdout.snapshot()
	s := checkStream(t, h.stdout.String())
	checkComplete(t, s)
	k.mu.Lock()
	samples := append([]faultSample(nil), k.samples...)
	k.mu.Unlock()

	// A query sent before the fault may answer just after it started, and
	// one sent under it may fail just after it ended.
	margin := faultSampling + faultSlack
	okIn := func(from, to time.Time) []faultSample {
		var out []faultSample
		for _, s := range samples {
			if s.ok && s.at.After(from) && s.at.Before(to) {
				out = append(out, s)
			}
		}
		return out
	}
	var last uint32
	gapsInFault, gapsOutside, afterFault := 0, 0, 0
	for i := 2; i < len(writes); i++ { // 0: definitions; 1: the first status, given back
		from, to := writes[i-1].at, writes[i].at
		v, ok := cycleBacklog(t, writes[i].data)
		if !ok {
			if got := okIn(from.Add(faultSlack), to.Add(-faultSlack)); len(got) > 0 {
				t.Errorf("update %d is a gap, but %d statuses arrived in its window (backlog %d at %v after its start)",
					i, len(got), got[0].backlog, got[0].at.Sub(from))
			}
			if from.After(f0.Add(margin)) && to.Before(f1) {
				gapsInFault++
			} else {
				gapsOutside++
			}
			continue
		}
		if v == bogusBacklog {
			t.Errorf("update %d charts a reply that answered another query (or none)", i)
		}
		if v <= last {
			t.Errorf("update %d: backlog %d is not fresher than the last value %d", i, v, last)
		}
		last = v
		fresh := false
		for _, s := range okIn(from.Add(-faultSlack), to.Add(faultSlack)) {
			fresh = fresh || s.backlog == v
		}
		if !fresh {
			t.Errorf("update %d: backlog %d did not arrive in its window", i, v)
		}
		if from.After(f1.Add(margin)) {
			afterFault++
		}
	}
	if afterFault < healthyAfter-1 {
		t.Errorf("only %d updates with values after the fault ended: no recovery", afterFault)
	}

	during := okIn(f0.Add(margin), f1)
	failing := stderr.between("failing", f0, f1.Add(margin))
	switch {
	case sc.noData:
		if len(during) > 0 {
			t.Errorf("%d statuses arrived during the fault (backlog %d first)", len(during), during[0].backlog)
		}
		if gapsInFault == 0 {
			t.Errorf("no gap while no status could arrive")
		}
		if len(failing) != 1 || !strings.Contains(failing[0], sc.logs) {
			t.Errorf("want one failure line mentioning %q during the fault, got %q", sc.logs, failing)
		}
		if r := stderr.between("recovered", f1, time.Now()); len(r) != 1 {
			t.Errorf("want one recovery line after the fault, got %q", r)
		}
	case sc.reconnect:
		if d := k.dials(); d != 2 {
			t.Errorf("%d sockets opened, want 2 (one reconnect)", d)
		}
		if gapsInFault+gapsOutside > 1 {
			t.Errorf("%d gaps around a reconnect, want at most 1", gapsInFault+gapsOutside)
		}
		if len(failing) != 1 || !strings.Contains(failing[0], sc.logs) {
			t.Errorf("want one failure line mentioning %q, got %q", sc.logs, failing)
		}
		if r := stderr.between("recovered", f0, time.Now()); len(r) != 1 {
			t.Errorf("want one recovery line, got %q", r)
		}
	default:
		if want := int(f1.Sub(f0) / faultSampling / 2); len(during) < want {
			t.Errorf("%d statuses arrived during the fault, want at least %d", len(during), want)
		}
		// A loaded machine may time out a query now and then; nothing else
		// may be logged, and no gap may appear while statuses arrive.
		for _, l := range failing {
			if !strings.Contains(l, "no audit status reply") || len(failing) > 1 {
				t.Errorf("failure logged while statuses kept arriving: %q", failing)
				break
			}
		}
		if gapsInFault > 0 && len(failing) == 0 {
			t.Errorf("%d gaps during a fault that let statuses through", gapsInFault)
		}
	}
	if gapsOutside > 0 {
		t.Logf("%d gaps in windows not wholly inside the fault", gapsOutside)
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr)
	}
}

// EPERM after charts exist (the capability was dropped): DISABLE, exit 1,
// one line that says how to fix it, and a valid stream up to there.
func TestFaultPermissionMidRun(t *testing.T) {
	k := &faultKernel{}
	h := newHarness(k.newClient)
	stderr := &stampedLog{}
	h.p.log = newStateLog(stderr)
	exit, _ := h.start(t)
	h.stdout.wait(t, 1+healthyBefore, 5*time.Second)
	k.setFault(func(_ *faultKernel, _ *nltest.Conn, req syscall.NetlinkMessage) ([][]byte, bool, error) {
		return [][]byte{nltest.Error(req, syscall.EPERM)}, true, nil
	})
	if code := waitExit(t, exit, 2*time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	s := checkStream(t, h.stdout.String())
	checkComplete(t, s)
	if !s.disabled || !strings.HasSuffix(h.stdout.String(), "END\nDISABLE\n") {
		t.Errorf("stream does not end with DISABLE after complete updates:\n%s", h.stdout)
	}
	want := "CAP_AUDIT_CONTROL"
	if !inInitialPIDNamespace() {
		want = "hostPID"
	}
	if e := stderr.String(); strings.Count(e, "\n") != 1 || !strings.Contains(e, want) {
		t.Errorf("stderr %q: want one line mentioning %s", e, want)
	}
}

// Cancelled before the kernel ever answered: run closes the socket it
// opened (the sampling goroutine that would close it never started).
// Found by FuzzPluginDatagrams, whose workers piled up receivers.
func TestCancelBeforeFirstStatusClosesSocket(t *testing.T) {
	conn := nltest.Dial(func(syscall.NetlinkMessage) ([][]byte, error) { return nil, nil })
	h := newHarness(kernel(conn, 4))
	exit, cancel := h.start(t)
	testkit.PollUntil(t, "a query", 2*time.Second, func() bool { return len(conn.Requests()) > 0 })
	cancel()
	waitExit(t, exit, 2*time.Second)
	testkit.PollUntil(t, "the socket closed", 2*time.Second, func() bool {
		err := conn.Send(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: 1000, Flags: syscall.NLM_F_REQUEST}})
		return err == syscall.EBADF
	})
}

// A socket whose replies never come, though the kernel takes every query
// (the sends return): after a few unanswered queries in a row the client
// gives it up and the sampler opens a new one, which answers. Without that,
// the plugin would wait on the broken socket forever.
func TestReconnectAfterUnansweredQueries(t *testing.T) {
	limit := netlink.NewSenderLimit(4)
	var dials atomic.Int32
	newClient := func() (statusClient, error) {
		n := dials.Add(1)
		conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
			if n == 1 {
				return nil, nil // the first socket: taken, never answered
			}
			return [][]byte{nltest.Reply(req, steadyPayload)}, nil
		})
		return netlink.New(conn, limit), nil
	}
	h := newHarness(newClient)
	h.start(t)
	h.stdout.wait(t, 2, 5*time.Second) // the charts, then a first update with data
	s := checkStream(t, h.stdout.String())
	if v := s.series("linux_audit.backlog", "backlog"); len(v) == 0 || v[0] == nil {
		t.Errorf("backlog series %v: want a value from the new socket", deref(v))
	}
	if n := dials.Load(); n < 2 {
		t.Errorf("%d sockets opened, want a second one", n)
	}
	if strings.Count(h.stderr.String(), "failing") != 1 {
		t.Errorf("stderr %q: want the failure logged once", h.stderr)
	}
}
