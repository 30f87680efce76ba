package netlink

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"sync/atomic"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"
)

// receiveTimeout bounds each Receive, so the receiver notices Close even if
// nothing interrupts it (Client.Close does, through Interrupt).
const receiveTimeout = 5 * time.Second

// receiveBuffer holds one datagram: an AUDIT_GET reply is 60 bytes; anything
// longer than this is reported truncated (and skipped), never misparsed.
const receiveBuffer = 8192

// socket is the real kernel connection: a NETLINK_AUDIT socket whose
// receives wait in Go's network poller, not in a blocking system call.
//
// Why not a blocking receive (as go-libaudit's NetlinkClient does): a
// goroutine blocked in a system call keeps its P in the syscall state, and
// the runtime's sysmon thread then polls every 20 us to 10 ms until it
// retakes the P. With a receive in progress nearly all the time, that
// polling cost the idle plugin about 3.6 ms of CPU per second, most of its
// total (bench/run.sh measures it). Parked in the poller, the receiver
// costs nothing while it waits.
//
// Sends go through go-libaudit's NetlinkClient, not the poller: the poller's
// write lock would queue every query behind one the kernel holds asleep (the
// sender penalty), and each held query must still reach the kernel, which
// queues its reply before the sender sleeps. They run on their own
// goroutines; Client closes the socket only when no send is in progress.
// Receives read a duplicate of the client's descriptor through the poller.
type socket struct {
	nl *libaudit.NetlinkClient // sends; numbers requests 1, 2, 3, …
	f  *os.File                // a dup of nl's descriptor, non-blocking, in the poller
	rc syscall.RawConn
	fd int // f's descriptor

	timeout time.Duration // receiveTimeout; tests shorten it
	buf     []byte        // only the receiver uses it

	interrupted atomic.Bool
	closed      atomic.Bool
}

// Open connects to the kernel's audit netlink socket.
func Open(maxSenders int) (*Client, error) {
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	return New(conn, maxSenders), nil
}

func dial() (*socket, error) {
	nl, err := libaudit.NewNetlinkClient(syscall.NETLINK_AUDIT, 0, nil, nil)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return nil, classifyErrno("open audit netlink socket", errno)
		}
		return nil, fmt.Errorf("open audit netlink socket: %w", err)
	}
	fd, err := receiveDescriptor(nl)
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("open audit netlink socket: %w", err)
	}
	// A non-blocking descriptor is registered with the runtime poller.
	// O_NONBLOCK is shared with nl's descriptor; a send to the kernel never
	// waits for buffer space, so nl.Send is unaffected.
	f := os.NewFile(uintptr(fd), "netlink-audit")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		nl.Close()
		return nil, fmt.Errorf("open audit netlink socket: %w", err)
	}
	return &socket{nl: nl, f: f, rc: rc, fd: fd, buf: make([]byte, receiveBuffer), timeout: receiveTimeout}, nil
}

// receiveDescriptor duplicates the client's unexported socket descriptor as
// a non-blocking one for the poller: go-libaudit only offers a blocking
// receive with no deadline. TestDescriptor fails if an update of go-libaudit
// changes the field.
func receiveDescriptor(nl *libaudit.NetlinkClient) (int, error) {
	v := reflect.ValueOf(nl).Elem().FieldByName("fd")
	if !v.IsValid() || v.Kind() != reflect.Int {
		return -1, errors.New("go-libaudit NetlinkClient has no int field fd")
	}
	fd, err := unix.Dup(int(v.Int()))
	if err != nil {
		return -1, fmt.Errorf("dup: %w", err)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("set non-blocking: %w", err)
	}
	return fd, nil
}

// Send hands the request to the kernel, which may keep the calling thread
// asleep for backlog_wait_time.
func (s *socket) Send(req syscall.NetlinkMessage) (uint32, error) {
	return s.nl.Send(req)
}

// Receive returns one datagram from the kernel, EAGAIN after the timeout
// or Interrupt, EBADF once closed, ErrStray for one from another sender, ErrMalformed for one
// longer than the buffer.
func (s *socket) Receive() ([]byte, error) {
	if err := s.f.SetReadDeadline(time.Now().Add(s.timeout)); err != nil {
		return nil, s.closedOr(err)
	}
	// After the deadline is set: an Interrupt before it set its own
	// deadline first, and that one was just overwritten.
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
		return nil, fmt.Errorf("%w: %d-byte datagram, longer than the %d-byte buffer", ErrMalformed, n, len(s.buf))
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
	return errors.Join(s.f.Close(), s.nl.Close())
}
