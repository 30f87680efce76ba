package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// RawConn is the baseline: the plainest correct AUDIT_GET round trip in Go.
// One socket, a blocking send, a blocking receive bounded by SO_RCVTIMEO and
// retried on EINTR (Go's preemption signals interrupt it), no goroutines.
// It cannot do what our client must (stay responsive while the kernel holds
// the sender asleep), which is exactly the cost the comparison shows.
type RawConn struct {
	fd  int
	seq uint32
	req [unix.SizeofNlMsghdr]byte
	buf []byte
}

const (
	auditGet    = 1000
	rawRecvWait = time.Second
)

// DialRaw opens a NETLINK_AUDIT socket bound by the kernel (autobind).
func DialRaw() (*RawConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	tv := unix.NsecToTimeval(rawRecvWait.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	return &RawConn{fd: fd, buf: make([]byte, 1<<16)}, nil
}

var kernelAddr = &unix.SockaddrNetlink{Family: unix.AF_NETLINK}

// Status sends AUDIT_GET and returns the status payload of its reply.
func (c *RawConn) Status() ([]byte, error) {
	c.seq++
	binary.NativeEndian.PutUint32(c.req[0:], unix.SizeofNlMsghdr)
	binary.NativeEndian.PutUint16(c.req[4:], auditGet)
	binary.NativeEndian.PutUint16(c.req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(c.req[8:], c.seq)
	for {
		err := unix.Sendto(c.fd, c.req[:], 0, kernelAddr)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return nil, fmt.Errorf("send: %w", err)
		}
	}
	for {
		n, from, err := unix.Recvfrom(c.fd, c.buf, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil, errors.New("no reply within " + rawRecvWait.String())
		case err != nil:
			return nil, fmt.Errorf("receive: %w", err)
		}
		if nl, ok := from.(*unix.SockaddrNetlink); !ok || nl.Pid != 0 {
			continue
		}
		b := c.buf[:n]
		for len(b) >= unix.SizeofNlMsghdr {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			typ := binary.NativeEndian.Uint16(b[4:])
			seq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.SizeofNlMsghdr || l > len(b) {
				break
			}
			if seq == c.seq {
				data := b[unix.SizeofNlMsghdr:l]
				switch typ {
				case auditGet:
					return data, nil
				case unix.NLMSG_ERROR:
					if len(data) >= 4 {
						if e := int32(binary.NativeEndian.Uint32(data)); e != 0 {
							return nil, unix.Errno(-e)
						}
					}
				}
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

// Close closes the socket.
func (c *RawConn) Close() error { return unix.Close(c.fd) }
