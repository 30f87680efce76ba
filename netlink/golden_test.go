package netlink

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// golden reads a datagram captured from the kernel (see testdata/README).
// The files are little-endian, as the capturing machine was.
func golden(tb testing.TB, name string) []byte {
	tb.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		tb.Skip("golden files are little-endian; this host is big-endian")
	}
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// withSeq returns a copy of a one-message datagram renumbered to seq, so a
// captured reply can answer a request of the fake.
func withSeq(b []byte, seq uint32) []byte {
	b = append([]byte(nil), b...)
	binary.NativeEndian.PutUint32(b[8:12], seq)
	return b
}

// goldenStatus is what audit-status.py printed when the reply was captured.
var goldenStatus = Status{
	Mask:                  0,
	Enabled:               Disabled,
	Failure:               FailurePrintk,
	PID:                   0,
	RateLimit:             0,
	BacklogLimit:          64,
	Lost:                  0,
	Backlog:               0,
	FeatureBitmap:         0x7f,
	BacklogWaitTime:       15000, // 60 s at CONFIG_HZ=250, the kernel default
	BacklogWaitTimeActual: 0,
	BacklogMaxDepth:       0,
	Fields:                FieldFeatureBitmap | FieldBacklogWaitTime | FieldBacklogWaitTimeActual,
	ReplyBytes:            44,
}

func TestGoldenStatusReply(t *testing.T) {
	b := golden(t, "audit_get_reply.bin")
	msgs, err := parseMessages(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parseMessages = %d messages, %v; want 1", len(msgs), err)
	}
	wantHdr := syscall.NlMsghdr{Len: 60, Type: typeAuditGet, Flags: 0, Seq: captureSeq, Pid: 0}
	if msgs[0].Header != wantHdr {
		t.Errorf("header = %+v, want %+v", msgs[0].Header, wantHdr)
	}
	s, err := parseStatus(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if s != goldenStatus {
		t.Errorf("parseStatus(golden)\n got %+v\nwant %+v", s, goldenStatus)
	}
	if !s.Has(FieldBacklogWaitTimeActual) || s.Has(FieldBacklogMaxDepth) {
		t.Errorf("a 44-byte reply has backlog_wait_time_actual and no backlog_max_depth: Fields %04b", s.Fields)
	}
}

func TestGoldenErrorReplies(t *testing.T) {
	tests := []struct {
		file  string
		errno syscall.Errno
		want  error
	}{
		{"audit_get_eperm.bin", syscall.EPERM, wantPermissionOrNamespace()},
		{"audit_get_econnrefused.bin", syscall.ECONNREFUSED, ErrNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			msgs, err := parseMessages(golden(t, tt.file))
			if err != nil || len(msgs) != 1 {
				t.Fatalf("parseMessages = %d messages, %v; want 1", len(msgs), err)
			}
			h := msgs[0].Header
			// The pid is the capturing process's port id, echoed by the kernel.
			if h.Len != 36 || h.Type != typeError || h.Flags != 0 || h.Seq != captureSeq || h.Pid == 0 {
				t.Errorf("header = %+v, want Len 36, NLMSG_ERROR, flags 0, seq %#x, our port id", h, captureSeq)
			}
			errno, err := parseError(msgs[0].Data)
			if err != nil || errno != tt.errno {
				t.Errorf("parseError = %v, %v; want %v", errno, err, tt.errno)
			}
			// The rest of the payload is our request's header, echoed back.
			echo, err := parseMessages(msgs[0].Data[4:])
			wantEcho := syscall.NlMsghdr{Len: 16, Type: typeAuditGet, Flags: syscall.NLM_F_REQUEST, Seq: captureSeq}
			if err != nil || len(echo) != 1 || echo[0].Header != wantEcho {
				t.Errorf("echoed request = %+v, %v; want %+v", echo, err, wantEcho)
			}
			cerr := classifyErrno("get", errno)
			if !errors.Is(cerr, tt.want) || !IsPermanent(cerr) {
				t.Errorf("classifyErrno(%v) = %v, want permanent %v", errno, cerr, tt.want)
			}
		})
	}
}
