package netlink

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Conn carries netlink datagrams to and from the kernel: the real audit
// socket (Open) or a request→reply fake (package nltest).
type Conn interface {
	// Send transmits req with the sequence number in its header: the
	// caller numbers requests, so it can wait for a reply by that number
	// before Send returns (the kernel queues the reply and may then keep
	// the sender asleep for a long time).
	Send(req syscall.NetlinkMessage) error
	// Receive returns one datagram from the kernel. It waits a bounded time
	// and returns EAGAIN when nothing arrived; ErrStray for a datagram not
	// sent by the kernel.
	Receive() ([]byte, error)
	Close() error
}

// ErrStray marks a datagram that did not come from the kernel; it is skipped.
var ErrStray = errors.New("netlink datagram not from the kernel")

// DefaultMaxSenders bounds the goroutines (and so OS threads) the kernel may
// hold asleep at once. At one query per second it covers the kernel's
// default 60 s backlog_wait_time.
const DefaultMaxSenders = 64

// SenderLimit bounds the sends in progress (each may be a thread the kernel
// holds asleep) across every Client that shares it. A held send outlives
// its Client: one limit for the whole process, shared by each client a
// reconnect creates, keeps the bound when clients are replaced.
type SenderLimit struct {
	slots chan struct{} // one token per send in progress
}

// NewSenderLimit allows n sends at once; n < 1 means DefaultMaxSenders.
func NewSenderLimit(n int) *SenderLimit {
	if n < 1 {
		n = DefaultMaxSenders
	}
	return &SenderLimit{slots: make(chan struct{}, n)}
}

// inUse is the number of sends in progress, across every client.
func (l *SenderLimit) inUse() int { return len(l.slots) }

// size is the most sends allowed at once.
func (l *SenderLimit) size() int { return cap(l.slots) }

// maxTimeouts is how many queries in a row may go unanswered, though the
// kernel took them (the send returned), before the client gives up its
// socket: the caller reconnects instead of waiting on a socket that lost
// its replies. A send the kernel holds asleep does not count.
const maxTimeouts = 3

// Client asks the kernel for its audit status. Status never waits longer
// than its context allows, even while the kernel holds the sending thread
// asleep (a backlog over its limit with backlog_wait_time > 0): the reply is
// queued before the sender sleeps, and a separate goroutine receives it.
type Client struct {
	conn    Conn
	senders *SenderLimit

	mu        sync.Mutex
	sent      uint32 // sequence numbers 1..sent were handed to Send
	timeouts  int    // unanswered queries in a row whose sends had returned
	pending   map[uint32]chan result
	sending   map[uint32]time.Time // sends not yet returned, by start time
	longest   time.Duration        // longest completed send since the last Penalty call
	recvErr   error                // why the receiver stopped
	closing   bool
	closeConn bool // the last returning sender closes the socket
	recvDone  chan struct{}
}

type result struct {
	status Status
	err    error
}

// New starts a client over conn whose sends count against limit; Open is
// the usual entry point. A nil limit gives the client one of its own
// (DefaultMaxSenders), for a client that is never replaced.
func New(conn Conn, limit *SenderLimit) *Client {
	if limit == nil {
		limit = NewSenderLimit(DefaultMaxSenders)
	}
	c := &Client{
		conn:     conn,
		senders:  limit,
		pending:  make(map[uint32]chan result),
		sending:  make(map[uint32]time.Time),
		recvDone: make(chan struct{}),
	}
	go c.receive()
	return c
}

// Status sends one AUDIT_GET and waits for its reply until ctx is done.
func (c *Client) Status(ctx context.Context) (Status, error) {
	// No query for a caller that has already given up: the kernel may hold
	// the sender for backlog_wait_time, taking a slot for nothing.
	if err := ctx.Err(); err != nil {
		return Status{}, fmt.Errorf("get audit status: %w (%w)", ErrTimeout, err)
	}
	select {
	case c.senders.slots <- struct{}{}:
	default:
		return Status{}, fmt.Errorf("get audit status: %w (%d queries asleep)", ErrHeld, c.senders.size())
	}
	reply := make(chan result, 1)
	c.mu.Lock()
	if c.recvErr != nil || c.closing {
		err := c.recvErr
		c.mu.Unlock()
		<-c.senders.slots
		if err == nil {
			err = ErrClosed
		}
		return Status{}, fmt.Errorf("get audit status: %w", err)
	}
	// The request carries this number to the kernel, and its reply (or
	// its send's error) comes back under it, whatever order the sender
	// goroutines reach the socket in.
	c.sent++
	seq := c.sent
	c.pending[seq] = reply
	c.sending[seq] = time.Now()
	c.mu.Unlock()

	go c.send(seq)

	select {
	case r := <-reply:
		return r.status, r.err
	case <-ctx.Done():
		return Status{}, c.timedOut(seq, ctx.Err())
	}
}

// timedOut gives up on query seq. After maxTimeouts unanswered queries in a
// row that the kernel did take, the client stops, and the error says
// ErrClosed too: the caller reconnects.
func (c *Client) timedOut(seq uint32, cause error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[seq]; !ok {
		// Answered (or failed) just now: the reply is in the channel, but
		// the caller gave up; it still shows the socket works.
		return fmt.Errorf("get audit status: %w (%w)", ErrTimeout, cause)
	}
	delete(c.pending, seq)
	if _, held := c.sending[seq]; held || c.closing || c.recvErr != nil {
		return fmt.Errorf("get audit status: %w (%w)", ErrTimeout, cause)
	}
	c.timeouts++
	if c.timeouts < maxTimeouts {
		return fmt.Errorf("get audit status: %w (%w)", ErrTimeout, cause)
	}
	c.stopLocked(fmt.Errorf("%w: no reply to %d queries in a row", ErrClosed, c.timeouts))
	if i, ok := c.conn.(interface{ Interrupt() }); ok {
		i.Interrupt() // the receiver sees recvErr at once
	}
	return gaveUpError{fmt.Errorf("get audit status: %w (%w)", ErrTimeout, cause)}
}

// gaveUpError is the timeout after which the client gave its socket up. It
// reads as the timeouts before it (callers log a failure again only when its
// text changes, and this is the same failure), and it is also ErrClosed, so
// the caller reconnects.
type gaveUpError struct{ timeout error }

func (e gaveUpError) Error() string   { return e.timeout.Error() }
func (e gaveUpError) Unwrap() []error { return []error{e.timeout, ErrClosed} }

// send runs in its own goroutine because the kernel may put it to sleep.
func (c *Client) send(seq uint32) {
	err := c.conn.Send(statusRequest(seq))
	c.mu.Lock()
	if d := time.Since(c.sending[seq]); d > c.longest {
		c.longest = d
	}
	delete(c.sending, seq)
	if err != nil {
		c.deliverLocked(seq, result{err: sendError(err)})
	}
	last := c.closeConn && len(c.sending) == 0
	c.mu.Unlock()
	<-c.senders.slots
	if last {
		c.conn.Close()
	}
}

func sendError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EBADF, syscall.ENOTSOCK:
			// The socket is gone. The receiver notices only on its next
			// receive; ErrClosed makes the caller reconnect now instead
			// of failing until then.
			return fmt.Errorf("send audit status request: %w (%w)", ErrClosed, errno)
		}
		return classifyErrno("send audit status request", errno)
	}
	return fmt.Errorf("send audit status request: %w", err)
}

// Penalty describes how the kernel is treating our queries right now.
type Penalty struct {
	Held        int           // queries asleep in the kernel now
	LongestHold time.Duration // longest send since the last call, finished or not
}

// Penalty reports and resets the longest send duration.
func (c *Client) Penalty() Penalty {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := Penalty{Held: len(c.sending), LongestHold: c.longest}
	now := time.Now()
	for _, start := range c.sending {
		if d := now.Sub(start); d > p.LongestHold {
			p.LongestHold = d
		}
	}
	c.longest = 0
	return p
}

// receive dispatches replies to waiting Status calls until the socket fails
// or the client is closed.
func (c *Client) receive() {
	defer close(c.recvDone)
	for {
		c.mu.Lock()
		closing, stopped := c.closing, c.recvErr != nil
		c.mu.Unlock()
		if stopped { // gave up on the socket (timedOut)
			return
		}
		if closing {
			c.stop(ErrClosed)
			return
		}
		b, err := c.conn.Receive()
		switch {
		case err == nil:
			c.dispatch(b)
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR),
			errors.Is(err, ErrStray), errors.Is(err, errMalformed):
			// Nothing arrived, or a datagram to skip.
		case errors.Is(err, syscall.ENOBUFS):
			// The socket overflowed and replies were dropped; the queries
			// waiting for them time out, later ones are unaffected.
		default:
			c.stop(fmt.Errorf("receive audit reply: %w (%w)", ErrClosed, err))
			return
		}
	}
}

func (c *Client) stop(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked(err)
}

func (c *Client) stopLocked(err error) {
	if c.recvErr != nil {
		return
	}
	c.recvErr = err
	for seq := range c.pending {
		c.deliverLocked(seq, result{err: fmt.Errorf("get audit status: %w", err)})
	}
}

// dispatch hands each message of a datagram to the query it answers.
// Replies to no pending query (late, duplicated, or never asked) are dropped.
func (c *Client) dispatch(b []byte) {
	msgs, _ := parseMessages(b) // a malformed tail loses only the messages after it
	for _, m := range msgs {
		switch m.Header.Type {
		case typeAuditGet:
			s, perr := parseStatus(m.Data)
			c.deliver(m.Header.Seq, result{status: s, err: wrapParse(perr)})
		case typeError:
			errno, perr := parseError(m.Data)
			if perr != nil {
				c.deliver(m.Header.Seq, result{err: wrapParse(perr)})
			} else if errno != 0 { // errno 0 is an ACK: the status follows
				c.deliver(m.Header.Seq, result{err: classifyErrno("get audit status", errno)})
			}
		}
	}
}

func wrapParse(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("parse audit status: %w", err)
}

// deliver hands the kernel's answer to query seq; any answer shows the
// socket works, so the count of unanswered queries starts again.
func (c *Client) deliver(seq uint32, r result) {
	c.mu.Lock()
	if _, ok := c.pending[seq]; ok {
		c.timeouts = 0
	}
	c.deliverLocked(seq, r)
	c.mu.Unlock()
}

func (c *Client) deliverLocked(seq uint32, r result) {
	if ch, ok := c.pending[seq]; ok {
		delete(c.pending, seq)
		ch <- r
	}
}

// Close stops the receiver and closes the socket. A send the kernel still
// holds keeps the socket open until it returns, so a descriptor is never
// closed under a thread that uses it.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.mu.Unlock()
	if i, ok := c.conn.(interface{ Interrupt() }); ok {
		i.Interrupt() // the receiver returns now, not after its receive times out
	}
	<-c.recvDone
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sending) > 0 {
		c.closeConn = true
		return nil
	}
	return c.conn.Close()
}
