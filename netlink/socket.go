package netlink

import (
	"errors"
	"fmt"
	"reflect"
	"syscall"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"
)

// receiveTimeout bounds each blocking receive, so the receiver notices Close.
const receiveTimeout = 250 * time.Millisecond

// socket is the real kernel connection: go-libaudit's netlink client, with a
// receive timeout it does not offer itself.
type socket struct {
	nl *libaudit.NetlinkClient
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
	fd, err := descriptor(nl)
	if err == nil {
		// NsecToTimeval: Timeval's fields are int32 on 32-bit targets, and
		// tv_usec must stay below one second.
		tv := unix.NsecToTimeval(receiveTimeout.Nanoseconds())
		err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err != nil {
		nl.Close()
		return nil, fmt.Errorf("open audit netlink socket: set receive timeout: %w", err)
	}
	return &socket{nl: nl}, nil
}

// descriptor reads the client's unexported socket descriptor: go-libaudit
// offers no deadline, and without one a receive can block forever.
// TestDescriptor fails if a go-libaudit update changes the field.
func descriptor(nl *libaudit.NetlinkClient) (int, error) {
	f := reflect.ValueOf(nl).Elem().FieldByName("fd")
	if !f.IsValid() || f.Kind() != reflect.Int {
		return -1, errors.New("go-libaudit NetlinkClient has no int field fd")
	}
	return int(f.Int()), nil
}

func (s *socket) Send(req syscall.NetlinkMessage) (uint32, error) {
	return s.nl.Send(req)
}

func (s *socket) Receive() ([]byte, error) {
	var datagram []byte
	_, err := s.nl.Receive(false, func(b []byte) ([]syscall.NetlinkMessage, error) {
		datagram = append([]byte(nil), b...)
		return nil, nil
	})
	var errno syscall.Errno
	switch {
	case err == nil:
		return datagram, nil
	case errors.As(err, &errno):
		return nil, errno
	default:
		// go-libaudit reports datagrams from other senders and runts as plain errors.
		return nil, fmt.Errorf("%w: %v", ErrStray, err)
	}
}

func (s *socket) Close() error { return s.nl.Close() }
