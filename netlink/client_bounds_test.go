package netlink

import (
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/testkit"
	"auditplugin/netlink/nltest"
)

// The bound on held sends is one for the process: clients replaced by
// reconnects share it, so sends the kernel still holds for closed clients
// count. With a bound of 2, three reconnects leave 2 sends held, not 6.
func TestSenderLimitAcrossReconnects(t *testing.T) {
	const bound = 2
	limit := NewSenderLimit(bound)
	release := make(chan struct{})
	var held, most atomic.Int32
	base := runtime.NumGoroutine()
	for i := range 3 {
		var conn *nltest.Conn
		conn = nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
			conn.Inject(answer(req)) // queued before the sender sleeps, as the kernel does
			n := held.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			<-release
			held.Add(-1)
			return nil, nil
		})
		c := New(conn, limit)
		for range bound {
			_, err := status(c, 2*time.Second)
			if err != nil && !errors.Is(err, ErrHeld) {
				t.Fatalf("client %d: Status = %v, want a reply or ErrHeld", i+1, err)
			}
		}
		if _, err := status(c, 2*time.Second); !errors.Is(err, ErrHeld) {
			t.Errorf("client %d: Status with %d sends held process-wide = %v, want ErrHeld", i+1, limit.inUse(), err)
		}
		c.Close() // as the sampler does before it reconnects
	}
	if n := most.Load(); n > bound {
		t.Errorf("%d sends held at once across 3 reconnects, want at most %d", n, bound)
	}
	if limit.inUse() != bound {
		t.Errorf("limit in use %d, want %d (the held sends of closed clients)", limit.inUse(), bound)
	}
	close(release)
	testkit.PollUntil(t, "the held sends return their slots", 5*time.Second, func() bool { return limit.inUse() == 0 })
	testkit.PollUntil(t, "the clients' goroutines exit", 5*time.Second, func() bool { return runtime.NumGoroutine() <= base })
}

// reorderConn delays each Send by a random time before it reaches the
// connection, so requests arrive in another order than they were numbered.
type reorderConn struct{ *nltest.Conn }

func (c reorderConn) Send(req syscall.NetlinkMessage) error {
	time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
	return c.Conn.Send(req)
}

// Each query gets the answer to the request it sent, by the sequence number
// the request carried, however the concurrent sends were ordered: a send
// error goes to its own caller, and a reply is never handed to another one
// (which would leave the caller of the reply's request waiting).
func TestRepliesMatchedBySentNumber(t *testing.T) {
	fake := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
		if req.Header.Seq%2 == 0 {
			return nil, syscall.EINVAL // the send fails
		}
		return [][]byte{answer(req)}, nil // lost carries the request's number
	})
	c := New(reorderConn{fake}, NewSenderLimit(32))
	defer c.Close()
	var mu sync.Mutex
	var got []uint32
	var failed int
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 10 {
				s, err := status(c, 5*time.Second)
				mu.Lock()
				switch {
				case err == nil:
					got = append(got, s.Lost)
				case errors.Is(err, syscall.EINVAL):
					failed++
				default:
					t.Errorf("Status = %v, want its reply or its own send's EINVAL", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var odd []uint32
	for _, r := range fake.Requests() {
		if r.Header.Seq%2 == 1 {
			odd = append(odd, r.Header.Seq)
		}
	}
	slices.Sort(got)
	slices.Sort(odd)
	if !slices.Equal(got, odd) || failed+len(got) != 160 {
		t.Errorf("%d replies (lost %v) and %d send errors; want exactly the replies to the odd requests %v and 160 answers", len(got), got, failed, odd)
	}
	assertReadOnly(t, fake.Requests())
}

// Queries the kernel took (their sends returned) but never answered, three
// in a row: the client gives its socket up with ErrClosed, so the caller
// reconnects. A reply in between starts the count again; a query the kernel
// holds asleep does not count.
func TestReconnectAfterRepeatedTimeouts(t *testing.T) {
	var answerNext atomic.Bool
	c, conn := newTestClient(t, 4, replies(func(req syscall.NetlinkMessage) [][]byte {
		if answerNext.Swap(false) {
			return [][]byte{answer(req)}
		}
		return nil // swallowed
	}))
	const wait = 30 * time.Millisecond
	for i := 1; i <= 2; i++ {
		if _, err := status(c, wait); !errors.Is(err, ErrTimeout) || errors.Is(err, ErrClosed) {
			t.Fatalf("unanswered query %d = %v, want ErrTimeout only", i, err)
		}
	}
	answerNext.Store(true)
	if _, err := status(c, 2*time.Second); err != nil {
		t.Fatalf("answered query = %v", err)
	}
	for i := 1; i <= maxTimeouts; i++ {
		_, err := status(c, wait)
		if i < maxTimeouts && (!errors.Is(err, ErrTimeout) || errors.Is(err, ErrClosed)) {
			t.Fatalf("unanswered query %d after a reply = %v, want ErrTimeout only", i, err)
		}
		if i == maxTimeouts && (!errors.Is(err, ErrTimeout) || !errors.Is(err, ErrClosed) || IsPermanent(err)) {
			t.Fatalf("unanswered query %d in a row = %v, want ErrTimeout and ErrClosed (reconnect), transient", i, err)
		}
	}
	sent := len(conn.Requests())
	if _, err := status(c, 2*time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Status after giving up = %v, want ErrClosed", err)
	}
	if n := len(conn.Requests()); n != sent {
		t.Errorf("%d requests sent after the client gave up, want none", n-sent)
	}

	// Held sends with no reply: the kernel has not taken them yet.
	release := make(chan struct{})
	defer close(release)
	c2, conn2 := newTestClient(t, 8, func(*nltest.Conn) nltest.Func {
		return func(syscall.NetlinkMessage) ([][]byte, error) { <-release; return nil, nil }
	})
	for i := 1; i <= 2*maxTimeouts; i++ {
		if err := statusGivenUp(t, c2, conn2, i); !errors.Is(err, ErrTimeout) || errors.Is(err, ErrClosed) {
			t.Fatalf("held query %d = %v, want ErrTimeout only", i, err)
		}
	}
}
