package kerneltest

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

// These run without root: they pin the safety rules that need no kernel.

func TestCheckRequestRefusesFailureModeAndResets(t *testing.T) {
	for _, mask := range []uint32{maskFailure, maskLost, maskWaitTimeActual, maskEnabled | maskFailure, 0x100} {
		p := make([]byte, setPayloadSize)
		binary.NativeEndian.PutUint32(p, mask)
		binary.NativeEndian.PutUint32(p[8:], 2) // failure=2, were it honoured
		if err := checkRequest(auditSet, p); err == nil {
			t.Errorf("AUDIT_SET with mask %#x was allowed", mask)
		}
	}
	for _, mask := range []uint32{maskEnabled, maskPID, maskRateLimit, maskBacklogLimit, maskBacklogWaitTime} {
		if err := checkRequest(auditSet, setPayload(mask, 1)); err != nil {
			t.Errorf("mask %#x: %v", mask, err)
		}
	}
	if err := checkRequest(auditSet, setPayload(maskEnabled, 2)); err == nil || !strings.Contains(err.Error(), "enabled=2") {
		t.Errorf("enabled=2 allowed or wrong error: %v", err)
	}
	for _, typ := range []uint16{1018 /* AUDIT_SET_FEATURE */, 1014 /* AUDIT_TRIM */, 1005 /* AUDIT_USER */} {
		if err := checkRequest(typ, nil); err == nil {
			t.Errorf("message type %d allowed", typ)
		}
	}
}

func TestSetPayloadNeverTouchesFailure(t *testing.T) {
	for _, mask := range []uint32{maskEnabled, maskPID, maskRateLimit, maskBacklogLimit, maskBacklogWaitTime} {
		p := setPayload(mask, 0xffffffff)
		if got := binary.NativeEndian.Uint32(p); got != mask {
			t.Errorf("mask %#x encoded as %#x", mask, got)
		}
		if f := binary.NativeEndian.Uint32(p[8:]); f != 0 {
			t.Errorf("mask %#x: failure field %d", mask, f)
		}
	}
}

func TestSettingsHaveNoFailureMode(t *testing.T) {
	// The API must offer no way to change the failure mode.
	typ := reflect.TypeOf(Settings{})
	for i := range typ.NumField() {
		if strings.Contains(strings.ToLower(typ.Field(i).Name), "fail") {
			t.Errorf("Settings.%s must not exist", typ.Field(i).Name)
		}
	}
	for _, m := range []any{&Kernel{}} {
		mt := reflect.TypeOf(m)
		for i := range mt.NumMethod() {
			if strings.Contains(strings.ToLower(mt.Method(i).Name), "fail") {
				t.Errorf("method %s must not exist", mt.Method(i).Name)
			}
		}
	}
}

func TestParseStatusByLength(t *testing.T) {
	b := make([]byte, 48)
	for i := range 12 {
		binary.NativeEndian.PutUint32(b[i*4:], uint32(100+i))
	}
	for _, n := range []int{32, 40, 44, 48, 52} {
		buf := b
		if n > len(b) {
			buf = append(append([]byte(nil), b...), make([]byte, n-len(b))...)
		}
		s, err := parseStatus(buf[:n])
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if s.Enabled != 101 || s.Backlog != 107 || s.ReplyBytes != n {
			t.Errorf("%d bytes: %+v", n, s)
		}
		if want := uint32(109); n >= 40 && s.BacklogWaitTime != want || n < 40 && s.BacklogWaitTime != 0 {
			t.Errorf("%d bytes: backlog_wait_time %d", n, s.BacklogWaitTime)
		}
		if n >= 44 && s.BacklogWaitTimeActual != 110 || n < 44 && s.BacklogWaitTimeActual != 0 {
			t.Errorf("%d bytes: backlog_wait_time_actual %d", n, s.BacklogWaitTimeActual)
		}
		if n >= 48 && s.BacklogMaxDepth != 111 || n < 48 && s.BacklogMaxDepth != 0 {
			t.Errorf("%d bytes: backlog_max_depth %d", n, s.BacklogMaxDepth)
		}
	}
	if _, err := parseStatus(b[:28]); err == nil {
		t.Error("28 bytes accepted")
	}
}

func TestParseMessagesStopsOnGarbage(t *testing.T) {
	b := make([]byte, 40)
	binary.NativeEndian.PutUint32(b, 20) // first message: 20 bytes, padded to 20
	binary.NativeEndian.PutUint16(b[4:], 3)
	binary.NativeEndian.PutUint32(b[20:], 8) // second: length below header size
	msgs := parseMessages(b)
	if len(msgs) != 1 || msgs[0].typ != 3 || len(msgs[0].data) != 4 {
		t.Fatalf("got %+v", msgs)
	}
}
