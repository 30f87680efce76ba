package netlink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"auditplugin/netlink/nltest"
)

// header encodes a bare netlink header with any length, even a lying one.
func header(length uint32, typ uint16, seq uint32) []byte {
	b := make([]byte, headerSize)
	binary.NativeEndian.PutUint32(b[0:], length)
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], 0x0102)
	binary.NativeEndian.PutUint32(b[8:], seq)
	binary.NativeEndian.PutUint32(b[12:], 0x0a0b0c0d)
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParseMessages(t *testing.T) {
	type msg struct {
		typ  uint16
		seq  uint32
		data string
	}
	five := nltest.Message(typeAuditGet, 0, 1, 0, []byte("12345")) // Len 21, padded to 24
	tests := []struct {
		name      string
		in        []byte
		want      []msg
		malformed bool
	}{
		{name: "empty datagram", in: nil},
		{name: "header only", in: nltest.Message(syscall.NLMSG_NOOP, 0, 7, 0, nil), want: []msg{{syscall.NLMSG_NOOP, 7, ""}}},
		{name: "one message with padding", in: five, want: []msg{{typeAuditGet, 1, "12345"}}},
		{name: "last message without its padding", in: five[:21], want: []msg{{typeAuditGet, 1, "12345"}}},
		{name: "partial padding at the end", in: five[:22], want: []msg{{typeAuditGet, 1, "12345"}}},
		{
			name: "several messages, padding between",
			in: nltest.Datagram(
				nltest.Message(typeError, 0, 1, 0, []byte{0, 0, 0, 0}),
				five,
				nltest.Message(typeAuditGet, 0, 2, 0, []byte("abcdefgh")),
				nltest.Message(typeDone, 0, 3, 0, []byte("x")),
			),
			want: []msg{{typeError, 1, "\x00\x00\x00\x00"}, {typeAuditGet, 1, "12345"}, {typeAuditGet, 2, "abcdefgh"}, {typeDone, 3, "x"}},
		},
		{name: "length 0", in: header(0, typeAuditGet, 1), malformed: true},
		{name: "length shorter than header", in: cat(header(8, typeAuditGet, 1), make([]byte, 8)), malformed: true},
		{name: "length one short of header", in: header(15, typeAuditGet, 1), malformed: true},
		{name: "length overruns datagram", in: cat(header(40, typeAuditGet, 1), make([]byte, 8)), malformed: true},
		{name: "length 0xffffffff", in: cat(header(0xffffffff, typeAuditGet, 1), make([]byte, 32)), malformed: true},
		{name: "length 0x80000010", in: cat(header(0x80000010, typeAuditGet, 1), make([]byte, 32)), malformed: true},
		{
			name:      "good message then overrun",
			in:        cat(five, header(100, typeAuditGet, 2)),
			want:      []msg{{typeAuditGet, 1, "12345"}},
			malformed: true,
		},
		{name: "runt alone", in: make([]byte, 15), malformed: true},
		{
			name:      "trailing runt",
			in:        cat(five, []byte{1, 2, 3, 4, 5, 6, 7}),
			want:      []msg{{typeAuditGet, 1, "12345"}},
			malformed: true,
		},
		{
			name:      "good message then zero length",
			in:        cat(five, header(0, typeAuditGet, 2), make([]byte, 16)),
			want:      []msg{{typeAuditGet, 1, "12345"}},
			malformed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := parseMessages(tt.in)
			if tt.malformed != (err != nil) {
				t.Fatalf("error = %v, want malformed %v", err, tt.malformed)
			}
			if err != nil && !errors.Is(err, errMalformed) {
				t.Errorf("error %v is not errMalformed", err)
			}
			if len(msgs) != len(tt.want) {
				t.Fatalf("got %d messages, want %d: %+v", len(msgs), len(tt.want), msgs)
			}
			for i, m := range msgs {
				w := tt.want[i]
				if m.Header.Type != w.typ || m.Header.Seq != w.seq || string(m.Data) != w.data {
					t.Errorf("message %d = type %d seq %d data %q, want type %d seq %d data %q",
						i, m.Header.Type, m.Header.Seq, m.Data, w.typ, w.seq, w.data)
				}
				if int(m.Header.Len) != headerSize+len(m.Data) {
					t.Errorf("message %d: Len %d, data %d bytes", i, m.Header.Len, len(m.Data))
				}
				// A capped slice: appending to one message's data cannot overwrite the next.
				if cap(m.Data) != len(m.Data) {
					t.Errorf("message %d: cap(Data) = %d, len %d", i, cap(m.Data), len(m.Data))
				}
			}
		})
	}
}

func TestParseMessagesHeaderFields(t *testing.T) {
	b := cat(header(20, typeAuditGet, 0x01020304), []byte("abcd"))
	msgs, err := parseMessages(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("parseMessages = %v, %v", msgs, err)
	}
	want := syscall.NlMsghdr{Len: 20, Type: typeAuditGet, Flags: 0x0102, Seq: 0x01020304, Pid: 0x0a0b0c0d}
	if msgs[0].Header != want {
		t.Errorf("header = %+v, want %+v", msgs[0].Header, want)
	}
}

func TestParseError(t *testing.T) {
	code := func(c int32, extra ...byte) []byte {
		return append(binary.NativeEndian.AppendUint32(nil, uint32(c)), extra...)
	}
	tests := []struct {
		name      string
		in        []byte
		want      syscall.Errno
		malformed bool
	}{
		{name: "ACK", in: code(0), want: 0},
		{name: "EPERM", in: code(-1), want: syscall.EPERM},
		{name: "ECONNREFUSED with echoed request", in: code(-111, make([]byte, 16)...), want: syscall.ECONNREFUSED},
		{name: "positive code", in: code(1), malformed: true},
		{name: "short payload", in: []byte{0xff, 0xff, 0xff}, malformed: true},
		{name: "empty payload", in: nil, malformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseError(tt.in)
			if tt.malformed {
				if !errors.Is(err, errMalformed) {
					t.Errorf("parseError = %v, %v; want errMalformed", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseError = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestStatusRequest pins the only request this package builds: AUDIT_GET,
// a plain request (no ACK, no dump), no payload.
func TestStatusRequest(t *testing.T) {
	req := statusRequest(7)
	if req.Header.Type != 1000 || req.Header.Flags != syscall.NLM_F_REQUEST || len(req.Data) != 0 || req.Header.Seq != 7 {
		t.Errorf("statusRequest(7) = %+v, want AUDIT_GET (1000), NLM_F_REQUEST, seq 7, no payload", req)
	}
	// On the wire: exactly what the kernel parses, 16 bytes, our number.
	want := nltest.Message(1000, syscall.NLM_F_REQUEST, 7, 0, nil)
	if got := encodeRequest(req); string(got) != string(want) {
		t.Errorf("encodeRequest = % x, want % x", got, want)
	}
}
