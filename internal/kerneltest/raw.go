package kerneltest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Message types and AUDIT_SET mask bits from include/uapi/linux/audit.h,
// spelled out here so this reader depends on neither go-libaudit nor our
// own netlink package (it is the independent cross-check of both).
const (
	auditGet       = 1000
	auditSet       = 1001
	auditAddRule   = 1011
	auditDelRule   = 1012
	auditListRules = 1013

	maskEnabled         = 0x01
	maskFailure         = 0x02
	maskPID             = 0x04
	maskRateLimit       = 0x08
	maskBacklogLimit    = 0x10
	maskBacklogWaitTime = 0x20
	maskLost            = 0x40 // resets lost: destructive for every reader
	maskWaitTimeActual  = 0x80 // resets backlog_wait_time_actual: same

	// allowedSetMask is everything this package may ever change. Failure mode
	// is absent on purpose: mode 2 panics the machine on the first lost record.
	allowedSetMask = maskEnabled | maskPID | maskRateLimit | maskBacklogLimit | maskBacklogWaitTime

	// setPayloadSize covers mask..backlog_wait_time (the 3.14 layout); the
	// kernel copies min(len, sizeof) and zeroes the rest, and we never need
	// the later fields.
	setPayloadSize = 40

	// recvSlice bounds each blocking receive, so deadlines are checked often
	// and nothing waits forever.
	recvSlice = 50 * time.Millisecond
	// requestTimeout bounds one request/reply exchange.
	requestTimeout = 5 * time.Second
)

var errNoAnswer = errors.New("no answer from the kernel audit subsystem")

// checkRequest is the single choke point every outgoing message passes: it
// refuses message types we do not need (AUDIT_SET_FEATURE, AUDIT_TRIM, user
// messages, ...) and any AUDIT_SET that would touch the failure mode, reset a
// counter or make the configuration immutable (enabled=2 lasts until reboot).
func checkRequest(typ uint16, payload []byte) error {
	switch typ {
	case auditGet, auditListRules, auditAddRule, auditDelRule:
		return nil
	case auditSet:
	default:
		return fmt.Errorf("kerneltest: refusing to send audit message type %d", typ)
	}
	if len(payload) < 8 {
		return fmt.Errorf("kerneltest: AUDIT_SET payload of %d bytes", len(payload))
	}
	mask := binary.NativeEndian.Uint32(payload[0:])
	if mask&^allowedSetMask != 0 {
		return fmt.Errorf("kerneltest: refusing AUDIT_SET with mask %#x (only %#x is allowed; never the failure mode)", mask, allowedSetMask)
	}
	if mask&maskEnabled != 0 {
		if e := binary.NativeEndian.Uint32(payload[4:]); e > 1 {
			return fmt.Errorf("kerneltest: refusing enabled=%d (2 locks the audit configuration until reboot)", e)
		}
	}
	return nil
}

// setPayload builds struct audit_status for AUDIT_SET with one field selected.
func setPayload(mask, value uint32) []byte {
	b := make([]byte, setPayloadSize)
	binary.NativeEndian.PutUint32(b[0:], mask)
	var idx int
	switch mask {
	case maskEnabled:
		idx = 1
	case maskPID:
		idx = 3
	case maskRateLimit:
		idx = 4
	case maskBacklogLimit:
		idx = 5
	case maskBacklogWaitTime:
		idx = 9
	default:
		// Only single allowed bits are built; checkRequest refuses the rest.
		return b
	}
	binary.NativeEndian.PutUint32(b[idx*4:], value)
	return b
}

type message struct {
	typ   uint16
	flags uint16
	seq   uint32
	data  []byte
}

func parseMessages(b []byte) []message {
	var out []message
	for len(b) >= unix.SizeofNlMsghdr {
		l := int(binary.NativeEndian.Uint32(b[0:]))
		if l < unix.SizeofNlMsghdr || l > len(b) {
			break
		}
		out = append(out, message{
			typ:   binary.NativeEndian.Uint16(b[4:]),
			flags: binary.NativeEndian.Uint16(b[6:]),
			seq:   binary.NativeEndian.Uint32(b[8:]),
			data:  b[unix.SizeofNlMsghdr:l],
		})
		next := (l + 3) &^ 3
		if next > len(b) {
			break
		}
		b = b[next:]
	}
	return out
}

// errnoOf decodes an NLMSG_ERROR payload: nil for an ACK.
func errnoOf(data []byte) error {
	if len(data) < 4 {
		return fmt.Errorf("short NLMSG_ERROR (%d bytes)", len(data))
	}
	if e := int32(binary.NativeEndian.Uint32(data)); e != 0 {
		return syscall.Errno(-e)
	}
	return nil
}

// conn is a raw NETLINK_AUDIT socket.
type conn struct {
	fd      int
	seq     atomic.Uint32
	sendMu  sync.Mutex     // one datagram in the kernel at a time per socket
	pending sync.WaitGroup // sends still inside the kernel (sender penalty)
	closed  atomic.Bool
}

func dial(groups uint32) (*conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("netlink audit socket: %w", err)
	}
	tv := unix.NsecToTimeval(recvSlice.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	if groups != 0 {
		// The kernel drops multicast records for a full socket (a file
		// creation is six records, a burst of them ~100 KiB in
		// milliseconds): room for every record a test counts.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
	}
	if err := bindUnique(fd, groups); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind netlink audit socket: %w", err)
	}
	c := &conn{fd: fd}
	c.seq.Store(uint32(time.Now().UnixNano()))
	return c, nil
}

// bindUnique binds fd to a random port id between pid_max (2^22) and the
// range the kernel's autobind counts down from (-4096). Autobind would give
// the first socket of a process the port id = its pid, and the kernel keeps
// a daemon registration by port id until a send to it fails: a control
// socket opened after closing our stalled daemon would then inherit the
// registration and be flooded with records (we saw ENOBUFS on our replies).
func bindUnique(fd int, groups uint32) error {
	var err error
	for range 64 {
		portid := uint32(1<<22) + rand.Uint32N(1<<30)
		err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: portid, Groups: groups})
		if err != unix.EADDRINUSE {
			return err
		}
	}
	return err
}

// close releases the socket once no send is inside the kernel any more. A
// send held by the sender penalty keeps the descriptor until it returns
// (closing under it could let the number be reused by another file).
func (c *conn) close() {
	if c.closed.Swap(true) {
		return
	}
	done := make(chan struct{})
	go func() { c.pending.Wait(); close(done) }()
	select {
	case <-done:
		unix.Close(c.fd)
	case <-time.After(100 * time.Millisecond):
		go func() { <-done; unix.Close(c.fd) }()
	}
}

// send hands one datagram to the kernel on a goroutine of its own. The
// kernel processes the request and queues any reply before it applies the
// sender penalty (audit_receive sleeps up to backlog_wait_time while the
// backlog is over its limit), so the caller can read the reply while the
// sending thread still sleeps. The channel reports the send's result.
func (c *conn) send(b []byte) <-chan error {
	done := make(chan error, 1)
	c.pending.Add(1)
	go func() {
		defer c.pending.Done()
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		var err error
		for {
			err = unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
			if err != unix.EINTR {
				break
			}
		}
		done <- err
	}()
	return done
}

// recv performs one receive bounded by SO_RCVTIMEO; (nil, nil) on timeout.
func (c *conn) recv(buf []byte) ([]message, error) {
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		switch err {
		case nil:
			return parseMessages(buf[:n]), nil
		case unix.EINTR:
			// Go's preemption signals interrupt blocking receives: retry.
			continue
		case unix.EAGAIN:
			return nil, nil
		case unix.ENOBUFS:
			// Messages to this socket were dropped (a multicast burst);
			// the socket still works, and a lost reply ends in a timeout.
			continue
		}
		return nil, fmt.Errorf("receive: %w", err)
	}
}

type request struct {
	typ     uint16
	flags   uint16
	payload []byte
	// handle sees every reply carrying this request's sequence number and
	// returns true once the request is complete.
	handle func(m message) (bool, error)
	seq    uint32
}

func ackRequest(typ uint16, payload []byte) *request {
	return &request{
		typ: typ, flags: unix.NLM_F_REQUEST | unix.NLM_F_ACK, payload: payload,
		handle: func(m message) (bool, error) {
			if m.typ == unix.NLMSG_ERROR {
				return true, errnoOf(m.data)
			}
			return false, nil
		},
	}
}

// do sends reqs in ONE datagram (the kernel handles them in order and applies
// the sender penalty once, after the last) and waits for all of them.
func (c *conn) do(timeout time.Duration, reqs ...*request) error {
	var buf []byte
	for _, r := range reqs {
		if err := checkRequest(r.typ, r.payload); err != nil {
			return err
		}
		r.seq = c.seq.Add(1)
		h := make([]byte, unix.SizeofNlMsghdr)
		binary.NativeEndian.PutUint32(h[0:], uint32(unix.SizeofNlMsghdr+len(r.payload)))
		binary.NativeEndian.PutUint16(h[4:], r.typ)
		binary.NativeEndian.PutUint16(h[6:], r.flags)
		binary.NativeEndian.PutUint32(h[8:], r.seq)
		buf = append(buf, h...)
		buf = append(buf, r.payload...)
		for len(buf)%4 != 0 {
			buf = append(buf, 0)
		}
	}
	sent := c.send(buf)
	open := len(reqs)
	var firstErr error
	rbuf := make([]byte, 1<<16)
	deadline := time.Now().Add(timeout)
	for open > 0 {
		select {
		case err := <-sent:
			if err != nil {
				return fmt.Errorf("send: %w", err)
			}
			sent = nil
		default:
		}
		if time.Now().After(deadline) {
			return errNoAnswer
		}
		msgs, err := c.recv(rbuf)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			for _, r := range reqs {
				if r.handle == nil || m.seq != r.seq {
					continue
				}
				done, err := r.handle(m)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if done || err != nil {
					r.handle = nil
					open--
				}
			}
		}
	}
	return firstErr
}

// set changes one audit_status field; mask is a single allowed bit.
func (c *conn) set(mask, value uint32) error {
	return c.do(requestTimeout, ackRequest(auditSet, setPayload(mask, value)))
}

func statusRequest(st *Status) *request {
	return &request{
		typ: auditGet, flags: unix.NLM_F_REQUEST,
		handle: func(m message) (bool, error) {
			switch m.typ {
			case unix.NLMSG_ERROR:
				if err := errnoOf(m.data); err != nil {
					return true, err
				}
				return false, nil
			case auditGet:
				s, err := parseStatus(m.data)
				s.Rules = st.Rules
				*st = s
				return true, err
			}
			return false, nil
		},
	}
}

func listRulesRequest(rules *[][]byte) *request {
	return &request{
		typ: auditListRules, flags: unix.NLM_F_REQUEST,
		handle: func(m message) (bool, error) {
			switch m.typ {
			case unix.NLMSG_ERROR:
				if err := errnoOf(m.data); err != nil {
					return true, err
				}
			case unix.NLMSG_DONE:
				return true, nil
			case auditListRules:
				*rules = append(*rules, append([]byte(nil), m.data...))
			}
			return false, nil
		},
	}
}

// status reads AUDIT_GET and, with rules != nil, AUDIT_LIST_RULES in the same
// datagram, so a penalised sender sleeps once for both.
func (c *conn) status(rules *[][]byte) (Status, error) {
	st := Status{Rules: -1}
	reqs := []*request{statusRequest(&st)}
	var list [][]byte
	if rules != nil {
		reqs = append(reqs, listRulesRequest(&list))
	}
	if err := c.do(requestTimeout, reqs...); err != nil {
		return Status{}, err
	}
	if rules != nil {
		st.Rules = len(list)
		*rules = list
	}
	return st, nil
}
