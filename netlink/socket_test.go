package netlink

import (
	"errors"
	"syscall"
	"testing"
	"time"

	libaudit "github.com/elastic/go-libaudit/v2"
	"golang.org/x/sys/unix"
)

// TestDescriptor guards the reflection in descriptor(): if a go-libaudit
// update renames or retypes NetlinkClient.fd, this fails instead of the
// plugin losing its receive timeout. Creating the socket needs no privilege.
func TestDescriptor(t *testing.T) {
	nl, err := libaudit.NewNetlinkClient(syscall.NETLINK_AUDIT, 0, nil, nil)
	if err != nil {
		t.Fatalf("create NETLINK_AUDIT socket: %v", err)
	}
	defer nl.Close()
	fd, err := descriptor(nl)
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []struct {
		name      string
		opt, want int
	}{
		{"SO_DOMAIN", unix.SO_DOMAIN, unix.AF_NETLINK},
		{"SO_TYPE", unix.SO_TYPE, unix.SOCK_RAW},
		{"SO_PROTOCOL", unix.SO_PROTOCOL, unix.NETLINK_AUDIT},
	} {
		got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt.opt)
		if err != nil || got != opt.want {
			t.Errorf("fd %d: %s = %d, %v; want %d", fd, opt.name, got, err, opt.want)
		}
	}
}

// TestDialSetsReceiveTimeout: without SO_RCVTIMEO the receiver could block
// forever and Close would never return.
func TestDialSetsReceiveTimeout(t *testing.T) {
	s, err := dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer s.Close()
	fd, err := descriptor(s.nl)
	if err != nil {
		t.Fatal(err)
	}
	tv, err := unix.GetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel keeps the timeout in jiffies and rounds up (250 ms reads
	// back as 252 ms at CONFIG_HZ=250); a jiffy is at most 10 ms.
	if got := time.Duration(unix.TimevalToNsec(*tv)); got < receiveTimeout || got > receiveTimeout+10*time.Millisecond {
		t.Errorf("SO_RCVTIMEO = %v, want %v", got, receiveTimeout)
	}

	// Nothing was asked, so Receive must give up with EAGAIN after about
	// receiveTimeout (retrying EINTR from Go's preemption signals, like the client).
	start := time.Now()
	for {
		_, err = s.Receive()
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if d := time.Since(start); !errors.Is(err, syscall.EAGAIN) || d < receiveTimeout/2 || d > 10*receiveTimeout {
		t.Errorf("idle Receive = %v after %v, want EAGAIN after about %v", err, d, receiveTimeout)
	}
}
