package netlink

import (
	"encoding/binary"
	"errors"
	"testing"
)

// words encodes audit_status fields in kernel order; a distinct value per
// field makes any misplaced offset visible.
func words(n int) []byte {
	vals := []uint32{0xa1, 1, 2, 4242, 100, 8192, 77, 5, 0x7f, 15000, 321, 999, 0xdead, 0xbeef}
	b := make([]byte, 0, n+4)
	for _, v := range vals {
		b = binary.NativeEndian.AppendUint32(b, v)
	}
	return b[:n]
}

func TestParseStatusByLength(t *testing.T) {
	core := Status{Mask: 0xa1, Enabled: Enabled, Failure: FailurePanic, PID: 4242, RateLimit: 100,
		BacklogLimit: 8192, Lost: 77, Backlog: 5}
	with := func(n int, f func(*Status)) Status {
		s := core
		s.ReplyBytes = n
		f(&s)
		return s
	}
	v314 := func(s *Status) {
		s.FeatureBitmap, s.BacklogWaitTime = 0x7f, 15000
		s.Fields |= FieldFeatureBitmap | FieldBacklogWaitTime
	}
	v59 := func(s *Status) { v314(s); s.BacklogWaitTimeActual = 321; s.Fields |= FieldBacklogWaitTimeActual }
	vMax := func(s *Status) { v59(s); s.BacklogMaxDepth = 999; s.Fields |= FieldBacklogMaxDepth }
	tests := []struct {
		name string
		size int
		want Status
	}{
		{"3.13 core", 32, with(32, func(*Status) {})},
		{"odd size between generations keeps the core", 39, with(39, func(*Status) {})},
		{"3.14", 40, with(40, v314)},
		{"5.9 (this machine)", 44, with(44, v59)},
		{"backlog_max_depth", 48, with(48, vMax)},
		{"future kernel, longer", 56, with(56, vMax)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatus(words(tt.size))
			if err != nil {
				t.Fatalf("parseStatus(%d bytes): %v", tt.size, err)
			}
			if got != tt.want {
				t.Errorf("parseStatus(%d bytes)\n got %+v\nwant %+v", tt.size, got, tt.want)
			}
		})
	}
}

func TestParseStatusTooShort(t *testing.T) {
	for _, n := range []int{0, 1, 4, 16, 28, 31} {
		got, err := parseStatus(words(n))
		if !errors.Is(err, errMalformed) {
			t.Errorf("parseStatus(%d bytes) error = %v, want errMalformed", n, err)
		}
		if got != (Status{}) {
			t.Errorf("parseStatus(%d bytes) = %+v, want zero Status", n, got)
		}
		if IsPermanent(err) {
			t.Errorf("a malformed reply must be transient: %v", err)
		}
	}
	if _, err := parseStatus(nil); !errors.Is(err, errMalformed) {
		t.Errorf("parseStatus(nil) error = %v, want errMalformed", err)
	}
}

func TestStatusHas(t *testing.T) {
	s := Status{Fields: FieldFeatureBitmap | FieldBacklogWaitTime | FieldBacklogWaitTimeActual}
	tests := []struct {
		f    Field
		want bool
	}{
		{0, true}, // the core is always there
		{FieldFeatureBitmap, true},
		{FieldBacklogWaitTime, true},
		{FieldBacklogWaitTimeActual, true},
		{FieldFeatureBitmap | FieldBacklogWaitTimeActual, true},
		{FieldBacklogMaxDepth, false},
		{FieldBacklogWaitTimeActual | FieldBacklogMaxDepth, false}, // Has means all of them
	}
	for _, tt := range tests {
		if got := s.Has(tt.f); got != tt.want {
			t.Errorf("Has(%04b) = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{FailureSilent.String(), "silent"},
		{FailurePrintk.String(), "printk"},
		{FailurePanic.String(), "panic"},
		{FailureMode(3).String(), "unknown(3)"},
		{FailureMode(0xffffffff).String(), "unknown(4294967295)"},
		{Disabled.String(), "disabled"},
		{Enabled.String(), "enabled"},
		{Immutable.String(), "immutable"},
		{EnabledState(7).String(), "unknown(7)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
	// The kernel's values (include/uapi/linux/audit.h), which go-libaudit gets wrong.
	if FailureSilent != 0 || FailurePrintk != 1 || FailurePanic != 2 {
		t.Errorf("failure modes = %d, %d, %d; want 0, 1, 2", FailureSilent, FailurePrintk, FailurePanic)
	}
}
