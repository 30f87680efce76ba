// Package nltest fakes the kernel at the request→reply level, in the manner
// of mdlayher/netlink's nltest: a Func maps each request to the datagrams the
// kernel would answer with. Conn records every request, so tests can prove
// the plugin only ever asks.
package nltest

import (
	"encoding/binary"
	"sync"
	"syscall"
	"time"
)

// Func answers one request with datagrams (each may hold several messages),
// or fails the send itself with an error.
type Func func(req syscall.NetlinkMessage) ([][]byte, error)

// Conn implements netlink.Conn over a Func.
type Conn struct {
	fn      Func
	timeout time.Duration

	log *requests // shared by Redial

	mu     sync.Mutex
	queue  [][]byte
	errs   []error // returned by Receive before the queue, one each call
	closed bool
	wake   chan struct{}
}

type requests struct {
	mu   sync.Mutex
	reqs []syscall.NetlinkMessage
}

// Dial returns a fake connection; Receive waits at most 20 ms for data.
func Dial(fn Func) *Conn {
	return &Conn{fn: fn, timeout: 20 * time.Millisecond, wake: make(chan struct{}, 1), log: &requests{}}
}

// Redial returns a new connection to the same fake kernel, as a reconnect
// opens a new socket: nothing queued on c reaches it, and Requests of
// either lists the requests sent on both.
func (c *Conn) Redial() *Conn {
	return &Conn{fn: c.fn, timeout: c.timeout, wake: make(chan struct{}, 1), log: c.log}
}

// Closed reports whether Close was called.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Send records the request, numbered by the caller as on the real socket,
// and queues the replies Func makes.
func (c *Conn) Send(req syscall.NetlinkMessage) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return syscall.EBADF
	}
	c.mu.Unlock()
	req.Header.Len = uint32(syscall.NLMSG_HDRLEN + len(req.Data))
	c.log.mu.Lock()
	c.log.reqs = append(c.log.reqs, req)
	c.log.mu.Unlock()

	replies, err := c.fn(req)
	if err != nil {
		return err
	}
	c.Inject(replies...)
	return nil
}

// Inject queues datagrams as if the kernel sent them unasked.
func (c *Conn) Inject(datagrams ...[]byte) {
	c.mu.Lock()
	c.queue = append(c.queue, datagrams...)
	c.mu.Unlock()
	c.notify()
}

// InjectError makes the next Receive call fail with err (EINTR, ENOBUFS, …).
func (c *Conn) InjectError(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
	c.notify()
}

func (c *Conn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Receive pops one datagram, or returns EAGAIN after the timeout as a real
// socket with SO_RCVTIMEO does.
func (c *Conn) Receive() ([]byte, error) {
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return nil, syscall.EBADF
		case len(c.errs) > 0:
			err := c.errs[0]
			c.errs = c.errs[1:]
			c.mu.Unlock()
			return nil, err
		case len(c.queue) > 0:
			d := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return d, nil
		}
		c.mu.Unlock()
		select {
		case <-c.wake:
		case <-deadline.C:
			return nil, syscall.EAGAIN
		}
	}
}

// Close makes later calls fail with EBADF, as on a closed descriptor.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.notify()
	return nil
}

// Requests returns every request sent so far (on c and its redials).
func (c *Conn) Requests() []syscall.NetlinkMessage {
	c.log.mu.Lock()
	defer c.log.mu.Unlock()
	return append([]syscall.NetlinkMessage(nil), c.log.reqs...)
}

// Message encodes one netlink message (header and payload, padded to 4 bytes).
func Message(typ uint16, flags uint16, seq, pid uint32, payload []byte) []byte {
	n := syscall.NLMSG_HDRLEN + len(payload)
	b := make([]byte, (n+3)&^3)
	binary.NativeEndian.PutUint32(b[0:], uint32(n))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], flags)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[12:], pid)
	copy(b[syscall.NLMSG_HDRLEN:], payload)
	return b
}

// Datagram concatenates messages into one datagram.
func Datagram(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = append(b, m...)
	}
	return b
}

// Reply answers req with one message of the same type carrying payload.
func Reply(req syscall.NetlinkMessage, payload []byte) []byte {
	return Message(req.Header.Type, 0, req.Header.Seq, req.Header.Pid, payload)
}

// Error answers req with NLMSG_ERROR carrying -errno (0 is an ACK).
func Error(req syscall.NetlinkMessage, errno syscall.Errno) []byte {
	p := make([]byte, 4+syscall.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(p, uint32(-int32(errno)))
	copy(p[4:], Message(req.Header.Type, req.Header.Flags, req.Header.Seq, req.Header.Pid, nil))
	return Message(syscall.NLMSG_ERROR, 0, req.Header.Seq, req.Header.Pid, p)
}

// Ack is an NLMSG_ERROR with errno 0.
func Ack(req syscall.NetlinkMessage) []byte { return Error(req, 0) }

// StatusPayload encodes audit_status fields in kernel order (mask, enabled,
// failure, pid, rate_limit, backlog_limit, lost, backlog, feature_bitmap,
// backlog_wait_time, backlog_wait_time_actual, backlog_max_depth); pass as
// many as the simulated kernel has.
func StatusPayload(fields ...uint32) []byte {
	b := make([]byte, 4*len(fields))
	for i, f := range fields {
		binary.NativeEndian.PutUint32(b[4*i:], f)
	}
	return b
}

// StatusFunc answers every AUDIT_GET with the status returned by next.
func StatusFunc(next func() []byte) Func {
	return func(req syscall.NetlinkMessage) ([][]byte, error) {
		return [][]byte{Reply(req, next())}, nil
	}
}
