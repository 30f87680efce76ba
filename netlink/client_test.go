package netlink

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/testkit"
	"auditplugin/netlink/nltest"
)

// statusBytes is a 44-byte audit_status like this machine's, with lost set
// so that tests can tell replies apart.
func statusBytes(lost uint32) []byte {
	return nltest.StatusPayload(0, 1, 1, 0, 0, 64, lost, 0, 127, 15000, 0)
}

// answer is the kernel's reply to req, carrying the request's seq in lost.
func answer(req syscall.NetlinkMessage) []byte {
	return nltest.Reply(req, statusBytes(req.Header.Seq))
}

// fakeKernel builds the fake's Func. It gets the Conn so that it can inject
// datagrams itself, e.g. queue a reply and then block like a held sender.
type fakeKernel func(conn *nltest.Conn) nltest.Func

// replies answers every request with the datagrams made by fn.
func replies(fn func(req syscall.NetlinkMessage) [][]byte) fakeKernel {
	return func(*nltest.Conn) nltest.Func {
		return func(req syscall.NetlinkMessage) ([][]byte, error) { return fn(req), nil }
	}
}

var plainKernel = replies(func(req syscall.NetlinkMessage) [][]byte { return [][]byte{answer(req)} })

// newTestClient starts a Client over a fake. Its cleanup closes the client
// and checks that every request it ever sent was a read-only AUDIT_GET, so
// each client test also proves the read-only property.
func newTestClient(t *testing.T, maxSenders int, kernel fakeKernel) (*Client, *nltest.Conn) {
	t.Helper()
	var fn nltest.Func
	conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) { return fn(req) })
	fn = kernel(conn)
	c := New(conn, NewSenderLimit(maxSenders))
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertReadOnly(t, conn.Requests())
	})
	return c, conn
}

func assertReadOnly(t *testing.T, reqs []syscall.NetlinkMessage) {
	t.Helper()
	for i, r := range reqs {
		if r.Header.Type != typeAuditGet || r.Header.Flags != syscall.NLM_F_REQUEST ||
			len(r.Data) != 0 || r.Header.Len != syscall.NLMSG_HDRLEN {
			t.Errorf("request %d is not a bare AUDIT_GET: header %+v, %d payload bytes", i, r.Header, len(r.Data))
		}
	}
}

func status(c *Client, timeout time.Duration) (Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Status(ctx)
}

// statusGivenUp runs a Status whose caller gives up once its request is the
// n-th one sent: a deadline could expire before the request went out on a
// loaded machine, and then nothing would be sent at all.
func statusGivenUp(t *testing.T, c *Client, conn *nltest.Conn, n int) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Status(ctx)
		done <- err
	}()
	testkit.PollUntil(t, fmt.Sprintf("request %d is sent", n), 5*time.Second, func() bool { return len(conn.Requests()) >= n })
	cancel()
	return <-done
}

// inFlight is Penalty().Held without resetting LongestHold.
func inFlight(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sending)
}

func TestNewDefaultMaxSenders(t *testing.T) {
	for _, n := range []int{0, -1} {
		c, _ := newTestClient(t, n, plainKernel)
		if c.senders.size() != DefaultMaxSenders {
			t.Errorf("NewSenderLimit(%d) allows %d senders, want %d", n, c.senders.size(), DefaultMaxSenders)
		}
	}
	if c := New(nltest.Dial(nil), nil); c.senders.size() != DefaultMaxSenders {
		t.Errorf("New(conn, nil) allows %d senders, want %d", c.senders.size(), DefaultMaxSenders)
	} else {
		c.Close()
	}
}

func TestStatusReply(t *testing.T) {
	goldenReply := golden(t, "audit_get_reply.bin") // read here: the fake runs outside the test goroutine
	want := Status{Enabled: Enabled, Failure: FailurePrintk, BacklogLimit: 64, FeatureBitmap: 127, BacklogWaitTime: 15000,
		Fields: FieldFeatureBitmap | FieldBacklogWaitTime | FieldBacklogWaitTimeActual, ReplyBytes: 44}
	tests := []struct {
		name   string
		kernel fakeKernel
		want   func(seq uint32) Status
	}{
		{"synthetic", plainKernel, func(seq uint32) Status { s := want; s.Lost = seq; return s }},
		{"golden bytes from the kernel", replies(func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{withSeq(goldenReply, req.Header.Seq)}
		}), func(uint32) Status { return goldenStatus }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, conn := newTestClient(t, 0, tt.kernel)
			for seq := uint32(1); seq <= 3; seq++ {
				s, err := status(c, 5*time.Second)
				if err != nil {
					t.Fatalf("Status #%d: %v", seq, err)
				}
				if s != tt.want(seq) {
					t.Errorf("Status #%d\n got %+v\nwant %+v", seq, s, tt.want(seq))
				}
			}
			if n := len(conn.Requests()); n != 3 {
				t.Errorf("3 Status calls sent %d requests", n)
			}
		})
	}
}

// The kernel sends the ACK before the status when NLM_F_ACK is set; we do
// not ask for one, but an ACK must never be taken for the answer.
func TestStatusAckThenReply(t *testing.T) {
	tests := []struct {
		name string
		dgs  func(req syscall.NetlinkMessage) [][]byte
	}{
		{"separate datagrams", func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{nltest.Ack(req), answer(req)}
		}},
		{"one datagram", func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{nltest.Datagram(nltest.Ack(req), answer(req))}
		}},
		{"ACK after the reply", func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{nltest.Datagram(answer(req), nltest.Ack(req))}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, 0, replies(tt.dgs))
			for seq := uint32(1); seq <= 2; seq++ {
				s, err := status(c, 5*time.Second)
				if err != nil || s.Lost != seq {
					t.Errorf("Status #%d = lost %d, %v; want lost %d", seq, s.Lost, err, seq)
				}
			}
		})
	}
}

func TestStatusErrors(t *testing.T) {
	reply := func(fn func(req syscall.NetlinkMessage) []byte) fakeKernel {
		return replies(func(req syscall.NetlinkMessage) [][]byte { return [][]byte{fn(req)} })
	}
	sendFails := func(err error) fakeKernel {
		return func(*nltest.Conn) nltest.Func {
			return func(syscall.NetlinkMessage) ([][]byte, error) { return nil, err }
		}
	}
	boom := errors.New("boom")
	goldenEPERM, goldenECONNREFUSED := golden(t, "audit_get_eperm.bin"), golden(t, "audit_get_econnrefused.bin")
	tests := []struct {
		name      string
		kernel    fakeKernel
		want      []error // all must be in the chain
		permanent bool
	}{
		{"golden EPERM", reply(func(req syscall.NetlinkMessage) []byte {
			return withSeq(goldenEPERM, req.Header.Seq)
		}), []error{wantPermissionOrNamespace(), syscall.EPERM}, true},
		{"golden ECONNREFUSED", reply(func(req syscall.NetlinkMessage) []byte {
			return withSeq(goldenECONNREFUSED, req.Header.Seq)
		}), []error{ErrNamespace, syscall.ECONNREFUSED}, true},
		{"EPERM", reply(func(req syscall.NetlinkMessage) []byte { return nltest.Error(req, syscall.EPERM) }),
			[]error{wantPermissionOrNamespace(), syscall.EPERM}, true},
		{"ECONNREFUSED", reply(func(req syscall.NetlinkMessage) []byte { return nltest.Error(req, syscall.ECONNREFUSED) }),
			[]error{ErrNamespace, syscall.ECONNREFUSED}, true},
		{"other errno", reply(func(req syscall.NetlinkMessage) []byte { return nltest.Error(req, syscall.EINVAL) }),
			[]error{syscall.EINVAL}, false},
		{"ACK then EPERM", replies(func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{nltest.Ack(req), nltest.Error(req, syscall.EPERM)}
		}), []error{wantPermissionOrNamespace()}, true},
		{"NLMSG_ERROR too short", reply(func(req syscall.NetlinkMessage) []byte {
			return nltest.Message(syscall.NLMSG_ERROR, 0, req.Header.Seq, 0, []byte{1, 2})
		}), []error{errMalformed}, false},
		{"NLMSG_ERROR positive code", reply(func(req syscall.NetlinkMessage) []byte {
			return nltest.Message(syscall.NLMSG_ERROR, 0, req.Header.Seq, 0, nltest.StatusPayload(5))
		}), []error{errMalformed}, false},
		{"status shorter than 32 bytes", reply(func(req syscall.NetlinkMessage) []byte {
			return nltest.Reply(req, nltest.StatusPayload(0, 1, 1, 0, 0))
		}), []error{errMalformed}, false},
		{"send EPERM", sendFails(syscall.EPERM), []error{wantPermissionOrNamespace(), syscall.EPERM}, true},
		{"send ECONNREFUSED", sendFails(syscall.ECONNREFUSED), []error{ErrNamespace}, true},
		{"send EPROTONOSUPPORT", sendFails(syscall.EPROTONOSUPPORT), []error{ErrNoAudit}, true},
		{"send ENOBUFS", sendFails(syscall.ENOBUFS), []error{syscall.ENOBUFS}, false},
		{"send fails without errno", sendFails(boom), []error{boom}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, 0, tt.kernel)
			for i := 0; i < 2; i++ { // an error answer leaves the client usable
				s, err := status(c, 5*time.Second)
				for _, w := range tt.want {
					if !errors.Is(err, w) {
						t.Errorf("Status = %v, want %v in the chain", err, w)
					}
				}
				if IsPermanent(err) != tt.permanent {
					t.Errorf("IsPermanent(%v) = %v, want %v", err, !tt.permanent, tt.permanent)
				}
				if errors.Is(err, ErrTimeout) || errors.Is(err, ErrClosed) {
					t.Errorf("Status = %v: the error answer was not delivered", err)
				}
				if s != (Status{}) {
					t.Errorf("Status returned %+v with error %v", s, err)
				}
			}
		})
	}
}

// Replies and errors for other sequence numbers (late, never asked, or
// someone else's) must not answer this query.
func TestStatusIgnoresOtherSeqs(t *testing.T) {
	c, _ := newTestClient(t, 0, replies(func(req syscall.NetlinkMessage) [][]byte {
		seq := req.Header.Seq
		other := func(s uint32) []byte {
			return nltest.Message(typeAuditGet, 0, s, 0, statusBytes(9999))
		}
		return [][]byte{
			other(seq + 1),
			other(0),
			other(seq + 1000),
			nltest.Message(syscall.NLMSG_ERROR, 0, seq+7, 0, nltest.StatusPayload(uint32(0xffffffff))), // EPERM for another seq
			nltest.Datagram(other(seq-1), other(^seq)),
			answer(req),
		}
	}))
	for seq := uint32(1); seq <= 3; seq++ {
		s, err := status(c, 5*time.Second)
		if err != nil || s.Lost != seq {
			t.Errorf("Status #%d = lost %d, %v; want lost %d", seq, s.Lost, err, seq)
		}
	}
}

func TestStatusDuplicateReplies(t *testing.T) {
	tests := []struct {
		name string
		dgs  func(req syscall.NetlinkMessage) [][]byte
	}{
		{"separate datagrams", func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{answer(req), answer(req), answer(req)}
		}},
		{"one datagram", func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{nltest.Datagram(answer(req), answer(req))}
		}},
		{"duplicate of an error", func(req syscall.NetlinkMessage) [][]byte {
			return [][]byte{answer(req), nltest.Error(req, syscall.EPERM)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, 0, replies(tt.dgs))
			for seq := uint32(1); seq <= 5; seq++ {
				s, err := status(c, 5*time.Second)
				if err != nil || s.Lost != seq {
					t.Errorf("Status #%d = lost %d, %v; want lost %d", seq, s.Lost, err, seq)
				}
			}
		})
	}
}

// Two queries in flight, answered in reverse order: each gets its own reply.
func TestStatusInterleaved(t *testing.T) {
	tests := []struct {
		name   string
		inject func(conn *nltest.Conn, r1, r2 []byte)
	}{
		{"one datagram", func(conn *nltest.Conn, r1, r2 []byte) { conn.Inject(nltest.Datagram(r2, r1)) }},
		{"two datagrams", func(conn *nltest.Conn, r1, r2 []byte) { conn.Inject(r2, r1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, conn := newTestClient(t, 0, replies(func(syscall.NetlinkMessage) [][]byte { return nil }))
			type res struct {
				s   Status
				err error
			}
			results := make([]chan res, 2)
			for i := range results {
				results[i] = make(chan res, 1)
				go func() {
					s, err := status(c, 5*time.Second)
					results[i] <- res{s, err}
				}()
				// Start the second query only once the first was sent, so
				// the fake numbers them in the same order as the client.
				testkit.PollUntil(t, fmt.Sprintf("request %d is sent", i+1), 5*time.Second, func() bool { return len(conn.Requests()) == i+1 })
			}
			reqs := conn.Requests()
			tt.inject(conn, answer(reqs[0]), answer(reqs[1]))
			for i, ch := range results {
				r := <-ch
				if r.err != nil || r.s.Lost != uint32(i+1) {
					t.Errorf("query %d = lost %d, %v; want lost %d", i+1, r.s.Lost, r.err, i+1)
				}
			}
		})
	}
}

// Many concurrent queries: every one is answered, each reply delivered once.
func TestStatusConcurrent(t *testing.T) {
	const n = 48
	c, _ := newTestClient(t, 0, plainKernel)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = make(map[uint32]int)
	)
	for range n {
		wg.Go(func() {
			s, err := status(c, 5*time.Second)
			if err != nil {
				t.Errorf("Status: %v", err)
				return
			}
			mu.Lock()
			seen[s.Lost]++
			mu.Unlock()
		})
	}
	wg.Wait()
	for seq := uint32(1); seq <= n; seq++ {
		if seen[seq] != 1 {
			t.Errorf("reply %d delivered %d times", seq, seen[seq])
		}
	}
}

// Messages of other types (records, NOOP, DONE, OVERRUN, other audit
// replies), even with our sequence number, are not answers.
func TestStatusIgnoresUnsolicited(t *testing.T) {
	c, conn := newTestClient(t, 0, replies(func(req syscall.NetlinkMessage) [][]byte {
		seq := req.Header.Seq
		var msgs [][]byte
		for _, typ := range []uint16{syscall.NLMSG_NOOP, syscall.NLMSG_DONE, syscall.NLMSG_OVERRUN, 1005 /* AUDIT_USER */, 1019 /* AUDIT_GET_FEATURE */, 1300 /* AUDIT_SYSCALL */, 1013 /* AUDIT_LIST_RULES */} {
			msgs = append(msgs, nltest.Message(typ, 0, seq, 0, statusBytes(9999)))
		}
		return [][]byte{nltest.Datagram(msgs...), msgs[5], answer(req)}
	}))
	// Unasked replies for queries 2 and 3 arrive before query 1's reply, so
	// they are dropped before those queries exist and must not linger.
	conn.Inject(nltest.Message(typeAuditGet, 0, 2, 0, statusBytes(9999)), nltest.Message(1300, 0, 0, 0, []byte("type=SYSCALL")),
		nltest.Message(typeAuditGet, 0, 3, 0, statusBytes(9999)))
	for seq := uint32(1); seq <= 3; seq++ {
		s, err := status(c, 5*time.Second)
		if err != nil || s.Lost != seq {
			t.Errorf("Status #%d = lost %d, %v; want lost %d", seq, s.Lost, err, seq)
		}
	}
}

// Receive errors that the receiver skips, and those that end it.
func TestReceiveErrors(t *testing.T) {
	tests := []struct {
		name  string
		errs  []error
		fatal bool
	}{
		{"EINTR storm", repeat(syscall.EINTR, 5000), false},
		{"EAGAIN storm", repeat(syscall.EAGAIN, 5000), false},
		{"ENOBUFS", []error{syscall.ENOBUFS, syscall.ENOBUFS}, false},
		{"datagram not from the kernel", []error{fmt.Errorf("%w: spoofed", ErrStray)}, false},
		{"malformed datagram", []error{fmt.Errorf("%w: runt", errMalformed)}, false},
		{"EBADF", []error{syscall.EBADF}, true},
		{"ENOTSOCK", []error{syscall.ENOTSOCK}, true},
		{"unknown error", []error{errors.New("boom")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, conn := newTestClient(t, 0, plainKernel)
			for _, err := range tt.errs {
				conn.InjectError(err)
			}
			// The fake returns queued errors before data, so the reply
			// to this query comes after them all.
			for seq := uint32(1); seq <= 2; seq++ {
				s, err := status(c, 5*time.Second)
				if tt.fatal {
					if !errors.Is(err, ErrClosed) || !errors.Is(err, tt.errs[0]) || IsPermanent(err) {
						t.Errorf("Status #%d = %v, want transient ErrClosed wrapping %v", seq, err, tt.errs[0])
					}
					continue
				}
				if err != nil || s.Lost != seq {
					t.Errorf("Status #%d = lost %d, %v; want lost %d", seq, s.Lost, err, seq)
				}
			}
		})
	}
}

func repeat(err error, n int) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// EINTR and EAGAIN arriving all the time, while queries run: some queued
// ahead of each reply, others injected concurrently. The fake returns errors
// before data, so the concurrent ones are paced to not starve the replies.
func TestStatusUnderErrorStorm(t *testing.T) {
	c, conn := newTestClient(t, 0, func(conn *nltest.Conn) nltest.Func {
		return func(req syscall.NetlinkMessage) ([][]byte, error) {
			for i := range 20 {
				conn.InjectError([]error{syscall.EINTR, syscall.EAGAIN}[i%2])
			}
			return [][]byte{answer(req)}, nil
		}
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Microsecond):
			}
			conn.InjectError([]error{syscall.EINTR, syscall.EAGAIN}[i%2])
		}
	})
	for seq := uint32(1); seq <= 200; seq++ {
		s, err := status(c, 5*time.Second)
		if err != nil || s.Lost != seq {
			t.Fatalf("Status #%d = lost %d, %v; want lost %d", seq, s.Lost, err, seq)
		}
	}
	close(stop)
	wg.Wait()
}

// ENOBUFS: the socket overflowed and dropped a reply. The query that waited
// for it times out; the client stays usable for the next one.
func TestENOBUFSLosesOnlyTheDroppedReply(t *testing.T) {
	c, conn := newTestClient(t, 0, func(conn *nltest.Conn) nltest.Func {
		return func(req syscall.NetlinkMessage) ([][]byte, error) {
			if req.Header.Seq == 1 {
				conn.InjectError(syscall.ENOBUFS) // instead of the reply
				return nil, nil
			}
			return [][]byte{answer(req)}, nil
		}
	})
	if err := statusGivenUp(t, c, conn, 1); !errors.Is(err, ErrTimeout) {
		t.Errorf("query whose reply was dropped = %v, want ErrTimeout", err)
	}
	s, err := status(c, 5*time.Second)
	if err != nil || s.Lost != 2 {
		t.Errorf("next Status = lost %d, %v; want lost 2", s.Lost, err)
	}
}

// A fatal receive error ends a query that is already waiting, at once.
func TestFatalReceiveErrorEndsWaitingQuery(t *testing.T) {
	c, conn := newTestClient(t, 0, replies(func(syscall.NetlinkMessage) [][]byte { return nil }))
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := status(c, 10*time.Second)
		done <- err
	}()
	testkit.PollUntil(t, "the query is sent", 5*time.Second, func() bool { return len(conn.Requests()) == 1 })
	conn.InjectError(syscall.EBADF)
	err := <-done
	if !errors.Is(err, ErrClosed) || !errors.Is(err, syscall.EBADF) {
		t.Errorf("waiting Status = %v, want ErrClosed (EBADF)", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waiting Status took %v: it waited for its deadline", d)
	}
}

func TestStatusTimeout(t *testing.T) {
	c, conn := newTestClient(t, 0, replies(func(req syscall.NetlinkMessage) [][]byte {
		if req.Header.Seq == 1 {
			return nil // no answer to the first query
		}
		return [][]byte{answer(req)}
	}))
	const timeout = 30 * time.Millisecond
	start := time.Now()
	_, err := status(c, timeout)
	d := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
		t.Errorf("Status = %v, want transient ErrTimeout (context deadline exceeded)", err)
	}
	if d < timeout || d > time.Second {
		t.Errorf("Status returned after %v, want about %v", d, timeout)
	}
	reqs := conn.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests sent, want 1", len(reqs))
	}
	// The late reply must not answer the next query.
	conn.Inject(answer(reqs[0]))
	s, err := status(c, 5*time.Second)
	if err != nil || s.Lost != 2 {
		t.Errorf("next Status = lost %d, %v; want lost 2", s.Lost, err)
	}
	c.mu.Lock()
	if len(c.pending) != 0 {
		t.Errorf("%d queries still pending after all returned", len(c.pending))
	}
	c.mu.Unlock()
}

// A caller whose context is already done gets ErrTimeout without a query
// being sent: a query the kernel may hold would only take a sender slot.
func TestStatusExpiredContext(t *testing.T) {
	c, conn := newTestClient(t, 0, plainKernel)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Status(ctx); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
		t.Errorf("Status(canceled ctx) = %v, want ErrTimeout (context canceled)", err)
	}
	testkit.PollUntil(t, "no send in flight", 5*time.Second, func() bool { return inFlight(c) == 0 })
	if n := len(conn.Requests()); n != 0 {
		t.Errorf("Status(canceled ctx) sent %d requests, want 0", n)
	}
}

// heldKernel queues each reply and then holds the sender until release is
// closed, as the kernel does while the backlog is over its limit with
// backlog_wait_time > 0 (audit_receive, Linux 5.17+).
func heldKernel(release <-chan struct{}) fakeKernel {
	return func(conn *nltest.Conn) nltest.Func {
		return func(req syscall.NetlinkMessage) ([][]byte, error) {
			conn.Inject(answer(req))
			<-release
			return nil, nil
		}
	}
}

func TestHeldSenders(t *testing.T) {
	const n = 3
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	c, conn := newTestClient(t, n, heldKernel(release))
	t.Cleanup(unblock) // runs before the client's Close

	base := runtime.NumGoroutine()
	for seq := uint32(1); seq <= n; seq++ {
		s, err := status(c, 5*time.Second)
		if err != nil || s.Lost != seq {
			t.Fatalf("held Status #%d = lost %d, %v; want the reply queued before the hold (lost %d)", seq, s.Lost, err, seq)
		}
	}
	if p := c.Penalty(); p.Held != n {
		t.Errorf("Penalty().Held = %d, want %d", p.Held, n)
	}

	// Every slot is asleep: the next queries fail at once, without a
	// request or a goroutine more.
	held := runtime.NumGoroutine()
	for range 100 {
		start := time.Now()
		_, err := status(c, 5*time.Second)
		if !errors.Is(err, ErrHeld) || IsPermanent(err) {
			t.Fatalf("Status with %d held senders = %v, want transient ErrHeld", n, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("ErrHeld took %v, want at once", d)
		}
	}
	if g := runtime.NumGoroutine(); g > held {
		t.Errorf("goroutines grew from %d to %d while every sender was held", held, g)
	}
	if r := len(conn.Requests()); r != n {
		t.Errorf("%d requests sent, want %d: nothing is sent while all senders are held", r, n)
	}

	p1 := c.Penalty()
	time.Sleep(5 * time.Millisecond)
	p2 := c.Penalty()
	if p2.Held != n || p2.LongestHold <= p1.LongestHold || p1.LongestHold <= 0 {
		t.Errorf("Penalty() = %+v then %+v: want Held %d and a LongestHold that grows", p1, p2, n)
	}

	unblock()
	testkit.PollUntil(t, "the held senders return", 5*time.Second, func() bool { return inFlight(c) == 0 })
	// The finished sends lasted longer than the last reading, and are
	// reported once; then the measure starts again.
	if p := c.Penalty(); p.Held != 0 || p.LongestHold < p2.LongestHold {
		t.Errorf("Penalty() after release = %+v, want Held 0 and LongestHold >= %v", p, p2.LongestHold)
	}
	if p := c.Penalty(); p != (Penalty{}) {
		t.Errorf("second Penalty() after release = %+v, want zero", p)
	}
	s, err := status(c, 5*time.Second)
	if err != nil || s.Lost != n+1 {
		t.Errorf("Status after release = lost %d, %v; want lost %d", s.Lost, err, n+1)
	}
	testkit.PollUntil(t, "the sender goroutines exit", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

// A query held so long that its caller gave up still holds its slot until
// the kernel lets it go: the slots count threads asleep, not callers.
func TestHeldSenderKeepsSlotAfterTimeout(t *testing.T) {
	release := make(chan struct{})
	c, conn := newTestClient(t, 1, func(*nltest.Conn) nltest.Func {
		return func(syscall.NetlinkMessage) ([][]byte, error) { <-release; return nil, nil } // held, no reply
	})
	defer close(release)
	if err := statusGivenUp(t, c, conn, 1); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Status = %v, want ErrTimeout", err)
	}
	if _, err := status(c, 5*time.Second); !errors.Is(err, ErrHeld) {
		t.Errorf("Status while the only sender is held = %v, want ErrHeld", err)
	}
	if n := len(conn.Requests()); n != 1 {
		t.Errorf("%d requests sent, want 1", n)
	}
}

// closeCounter counts Close calls on the connection.
type closeCounter struct {
	*nltest.Conn
	closes atomic.Int32
}

func (c *closeCounter) Close() error {
	c.closes.Add(1)
	return c.Conn.Close()
}

func TestCloseWithHeldSender(t *testing.T) {
	release := make(chan struct{})
	var fn nltest.Func
	conn := &closeCounter{Conn: nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) { return fn(req) })}
	fn = heldKernel(release)(conn.Conn)
	base := runtime.NumGoroutine()
	c := New(conn, NewSenderLimit(4))

	if s, err := status(c, 5*time.Second); err != nil || s.Lost != 1 {
		t.Fatalf("held Status = lost %d, %v; want lost 1", s.Lost, err)
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v: it must not wait for a held sender", d)
	}
	if n := conn.closes.Load(); n != 0 {
		t.Fatalf("Close closed the connection under a held sender (%d closes)", n)
	}
	if _, err := status(c, 5*time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Status after Close = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	close(release)
	testkit.PollUntil(t, "the held sender closes the connection", 5*time.Second, func() bool { return conn.closes.Load() > 0 })
	testkit.PollUntil(t, "the client's goroutines exit", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
	if n := conn.closes.Load(); n != 1 {
		t.Errorf("connection closed %d times, want 1", n)
	}
	assertReadOnly(t, conn.Requests())
}

func TestCloseEndsWaitingQuery(t *testing.T) {
	var fn nltest.Func
	conn := &closeCounter{Conn: nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) { return fn(req) })}
	fn = func(syscall.NetlinkMessage) ([][]byte, error) { return nil, nil } // never answers
	base := runtime.NumGoroutine()
	c := New(conn, nil)

	done := make(chan error, 1)
	go func() {
		_, err := status(c, 10*time.Second)
		done <- err
	}()
	testkit.PollUntil(t, "the query is sent", 5*time.Second, func() bool { return len(conn.Requests()) == 1 })
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := conn.closes.Load(); n != 1 {
		t.Errorf("Close with no sender in flight closed the connection %d times, want 1", n)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("waiting Status = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting Status outlived Close")
	}
	if _, err := status(c, 5*time.Second); !errors.Is(err, ErrClosed) || IsPermanent(err) {
		t.Errorf("Status after Close = %v, want transient ErrClosed", err)
	}
	testkit.PollUntil(t, "the client's goroutines exit", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

// TestReadOnly drives the client through every path it has (answers, errors,
// timeouts, holds, concurrency, close) against a recording fake: every
// request it ever sends is a bare AUDIT_GET, and a Status call sends at
// most one (no retries that would add to a penalized kernel's load).
func TestReadOnly(t *testing.T) {
	release := make(chan struct{})
	var fn nltest.Func
	conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) { return fn(req) })
	fn = func(req syscall.NetlinkMessage) ([][]byte, error) {
		switch req.Header.Seq % 6 {
		case 0:
			return [][]byte{nltest.Error(req, syscall.EPERM)}, nil
		case 1:
			return nil, nil // timeout
		case 2:
			return nil, syscall.ENOBUFS
		case 3:
			conn.Inject(answer(req))
			<-release
			return nil, nil
		case 4:
			return [][]byte{nltest.Reply(req, []byte{1})}, nil
		}
		return [][]byte{nltest.Ack(req), answer(req)}, nil
	}
	c := New(conn, NewSenderLimit(8))
	var mayHaveSent atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				_, err := status(c, 20*time.Millisecond)
				if !errors.Is(err, ErrHeld) {
					// ErrTimeout may also come before sending, and
					// ErrClosed after (unanswered queries in a row stop
					// the client).
					mayHaveSent.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(release)
	c.Close()
	reqs := conn.Requests()
	assertReadOnly(t, reqs)
	if len(reqs) > int(mayHaveSent.Load()) || len(reqs) == 0 {
		t.Errorf("%d Status calls reached the kernel with %d requests, want at most one each", mayHaveSent.Load(), len(reqs))
	}
}

// A send that fails because the socket is gone (EBADF, ENOTSOCK) reports
// ErrClosed, so the caller reconnects at once: the receiver would notice
// only on its next receive, and a fake or a reused descriptor may never
// make it notice. Found by plugin.TestFaults.
func TestSendOnClosedSocketIsErrClosed(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EBADF, syscall.ENOTSOCK} {
		t.Run(errno.Error(), func(t *testing.T) {
			c, _ := newTestClient(t, 0, func(*nltest.Conn) nltest.Func {
				return func(syscall.NetlinkMessage) ([][]byte, error) { return nil, errno }
			})
			_, err := status(c, 5*time.Second)
			if !errors.Is(err, ErrClosed) || !errors.Is(err, errno) || IsPermanent(err) {
				t.Errorf("Status = %v, want ErrClosed and %v in the chain, transient", err, errno)
			}
		})
	}
}
