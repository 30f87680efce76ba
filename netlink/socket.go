package netlink

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// receiveTimeout bounds each Receive, so the receiver notices Close even if
// nothing interrupts it (Client.Close does, through Interrupt).
const receiveTimeout = 5 * time.Second

// receiveBuffer holds one datagram: an AUDIT_GET reply is 60 bytes; anything
// longer than this is reported truncated (and skipped), never misparsed.
const receiveBuffer = 8192

// socket is the real kernel connection: our own NETLINK_AUDIT socket
// (x/sys/unix), whose receives wait in Go's network poller, not in a
// blocking system call.
//
// Why not a blocking receive (as go-libaudit's NetlinkClient does): a
// goroutine blocked in a system call keeps its P in the syscall state, and
// the runtime's sysmon thread then polls every 20 us to 10 ms until it
// retakes the P. With a receive in progress nearly all the time, that
// polling cost the idle plugin about 3.6 ms of CPU per second, most of its
// total (bench/run.sh measures it). Parked in the poller, the receiver
// costs nothing while it waits.
//
// Sends are a plain sendto on the descriptor, from the sender's goroutine
// (RawConn.Control: it only pins the descriptor open, it takes no lock),
// not os.File.Write: the poller's write lock would queue every query behind
// one the kernel holds asleep (the sender penalty), and each held query must
// still reach the kernel, which queues its reply before the sender sleeps.
// O_NONBLOCK does not matter for them: a send to the kernel never waits for
// buffer space, and the penalty sleeps whatever the flags. Client closes the
// socket only when no send is in progress (Close would wait for them).
//
// Why not under go-libaudit's AuditClient (its Netlink field takes any
// NetlinkSendReceiver): the plugin uses none of it. We frame, number and
// parse the messages ourselves, and the package no longer reaches into
// go-libaudit's unexported socket descriptor.
type socket struct {
	f  *os.File // non-blocking, in the poller
	rc syscall.RawConn
	fd int // f's descriptor, for tests

	timeout  time.Duration // receiveTimeout; tests shorten it
	buf      []byte        // only the receiver uses it
	deadline time.Time     // the read deadline set last; only the receiver uses it

	interrupted atomic.Bool
	closed      atomic.Bool
}

// Open connects to the kernel's audit netlink socket; its sends count
// against limit, shared with every other client of the process (nil: a
// limit of its own).
func Open(limit *SenderLimit) (*Client, error) {
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	return New(conn, limit), nil
}

func dial() (*socket, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, openError(err)
	}
	// Port id 0 in bind: the kernel picks a unique one.
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, openError(err)
	}
	// A non-blocking descriptor is registered with the runtime poller.
	f := os.NewFile(uintptr(fd), "netlink-audit")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit netlink socket: %w", err)
	}
	return &socket{f: f, rc: rc, fd: fd, buf: make([]byte, receiveBuffer), timeout: receiveTimeout}, nil
}

func openError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return classifyErrno("open audit netlink socket", errno)
	}
	return fmt.Errorf("open audit netlink socket: %w", err)
}

// Send hands the request, numbered by its header's Seq, to the kernel,
// which may keep the calling thread asleep for backlog_wait_time.
func (s *socket) Send(req syscall.NetlinkMessage) error {
	b := encodeRequest(req)
	// The kernel's end (port id 0). One per send: Sendto writes into it.
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		for {
			serr = unix.Sendto(int(fd), b, 0, to)
			if serr != unix.EINTR {
				return
			}
		}
	})
	if err != nil {
		return s.closedOr(err)
	}
	return serr
}

// Receive returns one datagram from the kernel, EAGAIN after the timeout
// or Interrupt, EBADF once closed, ErrStray for one from another sender, errMalformed for one
// longer than the buffer.
func (s *socket) Receive() ([]byte, error) {
	// A new deadline only once half the last one's time is used up: each
	// change of a read deadline moves a runtime timer, and replies come
	// several times a second. A receive still waits at most the timeout.
	if now := time.Now(); s.deadline.Sub(now) < s.timeout/2 {
		s.deadline = now.Add(s.timeout)
		if err := s.f.SetReadDeadline(s.deadline); err != nil {
			return nil, s.closedOr(err)
		}
	}
	// After the deadline is set: an Interrupt before it set its own
	// deadline first, and that one may just have been overwritten.
	if s.interrupted.Load() {
		return nil, syscall.EAGAIN
	}
	var n int
	var from unix.Sockaddr
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		// MSG_TRUNC: n is the datagram's real length, even if longer than buf.
		n, from, rerr = unix.Recvfrom(int(fd), s.buf, unix.MSG_TRUNC)
		return rerr != unix.EAGAIN // EAGAIN: wait in the poller until readable
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, syscall.EAGAIN
	case err != nil:
		return nil, s.closedOr(err)
	case rerr != nil:
		return nil, rerr
	}
	if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
		return nil, fmt.Errorf("%w: from %+v", ErrStray, from)
	}
	if n > len(s.buf) {
		return nil, fmt.Errorf("%w: %d-byte datagram, longer than the %d-byte buffer", errMalformed, n, len(s.buf))
	}
	return append([]byte(nil), s.buf[:n]...), nil
}

// Interrupt makes a waiting Receive return EAGAIN now (Client.Close).
func (s *socket) Interrupt() {
	s.interrupted.Store(true)
	_ = s.f.SetReadDeadline(time.Now())
}

// closedOr reports EBADF, as a closed descriptor does, if the socket was
// closed (the os package says "use of closed file" in several ways).
func (s *socket) closedOr(err error) error {
	if s.closed.Load() {
		return syscall.EBADF
	}
	return err
}

func (s *socket) Close() error {
	s.closed.Store(true)
	return s.f.Close()
}
