package netlink

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// captureSeq is the sequence number of the captured requests; golden tests
// check that the kernel echoed it.
const captureSeq = 0x5eed

// TestCapture saves the raw datagram the kernel answers to one AUDIT_GET
// into the file named by AUDITPLUGIN_CAPTURE. It uses bare syscalls, not the
// code under test, so the golden files are what the kernel really sends. See
// testdata/README for the commands that produced them. It only reads.
func TestCapture(t *testing.T) {
	out := os.Getenv("AUDITPLUGIN_CAPTURE")
	if out == "" {
		t.Skip("set AUDITPLUGIN_CAPTURE=file.bin to capture a kernel reply")
	}
	fd := captureRequest(t, typeAuditGet)
	buf := make([]byte, 65536)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EINTR {
			continue // Go's preemption signals interrupt blocking receives
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, buf[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("saved %d bytes to %s", n, out)
		return
	}
}

// captureRequest sends one bodiless request of type typ with captureSeq on
// a new NETLINK_AUDIT socket (closed at the end of t, receives time out
// after 2 s), with bare syscalls: the capture must not go through the code
// under test.
func captureRequest(t *testing.T, typ uint16) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_AUDIT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(2 * time.Second))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	req := make([]byte, unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint32(req[0:], unix.NLMSG_HDRLEN)
	binary.NativeEndian.PutUint16(req[4:], typ)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], captureSeq)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		t.Fatal(err)
	}
	return fd
}
