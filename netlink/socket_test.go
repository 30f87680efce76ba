package netlink

import (
	"errors"
	"go/build"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dialTest opens the real socket; creating one needs no privilege.
func dialTest(t *testing.T) *socket {
	t.Helper()
	s, err := dial()
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDialSocket(t *testing.T) {
	s := dialTest(t)
	for _, opt := range []struct {
		name      string
		opt, want int
	}{
		{"SO_DOMAIN", unix.SO_DOMAIN, unix.AF_NETLINK},
		{"SO_TYPE", unix.SO_TYPE, unix.SOCK_RAW},
		{"SO_PROTOCOL", unix.SO_PROTOCOL, unix.NETLINK_AUDIT},
	} {
		got, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, opt.opt)
		if err != nil || got != opt.want {
			t.Errorf("fd %d: %s = %d, %v; want %d", s.fd, opt.name, got, err, opt.want)
		}
	}
	// Non-blocking: the receiver waits in the poller, not in a system call.
	flags, err := unix.FcntlInt(uintptr(s.fd), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK == 0 {
		t.Errorf("fd flags %#x, %v: want O_NONBLOCK", flags, err)
	}
	if sa, err := unix.Getsockname(s.fd); err != nil || sa.(*unix.SockaddrNetlink).Pid == 0 {
		t.Errorf("not bound to a port id: %+v, %v", sa, err)
	}
}

// Without a deadline the receiver could wait forever and Close would never
// return: an idle Receive gives up with EAGAIN after its timeout.
func TestReceiveTimesOut(t *testing.T) {
	s := dialTest(t)
	s.timeout = 50 * time.Millisecond
	start := time.Now()
	_, err := s.Receive()
	if d := time.Since(start); !errors.Is(err, syscall.EAGAIN) || d < s.timeout/2 || d > 20*s.timeout {
		t.Errorf("idle Receive = %v after %v, want EAGAIN after about %v", err, d, s.timeout)
	}
}

// Interrupt (Client.Close) ends a waiting Receive at once, and every later one.
func TestReceiveInterrupt(t *testing.T) {
	s := dialTest(t)
	done := make(chan error, 1)
	go func() { _, err := s.Receive(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	s.Interrupt()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EAGAIN) {
			t.Errorf("interrupted Receive = %v, want EAGAIN", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Receive still waiting 2 s after Interrupt")
	}
	t.Logf("Receive returned %v after Interrupt", time.Since(start))
	if _, err := s.Receive(); !errors.Is(err, syscall.EAGAIN) {
		t.Errorf("Receive after Interrupt = %v, want EAGAIN at once", err)
	}
}

func TestReceiveAfterClose(t *testing.T) {
	s, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := s.Receive(); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Receive on a closed socket = %v, want EBADF (the client then stops)", err)
	}
}

// A datagram from another socket than the kernel's (root may send one) is
// ErrStray, whatever its size.
func TestReceiveStrayAndOversized(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only CAP_NET_ADMIN may send to another NETLINK_AUDIT socket")
	}
	s := dialTest(t)
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		t.Fatal(err)
	}
	other, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other)
	to := &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Pid: sa.(*unix.SockaddrNetlink).Pid}
	for _, tc := range []struct {
		size int
		want error
	}{
		{syscall.NLMSG_HDRLEN + 44, ErrStray},
		{receiveBuffer + 100, ErrStray}, // truncated, and still recognised as stray
	} {
		msg := make([]byte, tc.size)
		if err := unix.Sendto(other, msg, 0, to); err != nil {
			t.Skipf("cannot send to another netlink audit socket here: %v", err)
		}
		_, err := s.Receive()
		if !errors.Is(err, tc.want) {
			t.Errorf("%d-byte datagram from port %v: Receive = %v, want %v", tc.size, other, err, tc.want)
		}
	}
}

// The request on the wire: type and flags as given, and the sequence
// number the caller chose, which the kernel's reply carries back.
func TestIntegrationSocketSend(t *testing.T) {
	lockKernel(t)
	s := dialTest(t)
	s.timeout = 2 * time.Second
	for _, seq := range []uint32{7, 3, 0xfffffff0} {
		if err := s.Send(statusRequest(seq)); err != nil {
			t.Skipf("the kernel refuses AUDIT_GET here: %v", err)
		}
		b, err := s.Receive()
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		msgs, err := parseMessages(b)
		if err != nil || len(msgs) == 0 || msgs[0].Header.Seq != seq {
			t.Fatalf("reply %+v, %v: want seq %d", msgs, err, seq)
		}
	}
}

// Send on a closed socket is EBADF, as on a closed descriptor (the client
// then reports ErrClosed and the caller reconnects).
func TestSendAfterClose(t *testing.T) {
	s, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Send(statusRequest(1)); !errors.Is(err, syscall.EBADF) {
		t.Errorf("Send on a closed socket = %v, want EBADF", err)
	}
}

// The transport is ours: the package (tests aside) neither reads another
// library's unexported state through reflect nor depends on go-libaudit's
// netlink client. kerneltest may use go-libaudit (rules, AUDIT_SET).
func TestTransportIsOurs(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if imp == "reflect" || strings.HasPrefix(imp, "github.com/elastic/go-libaudit") {
			t.Errorf("package netlink imports %s", imp)
		}
	}
}
