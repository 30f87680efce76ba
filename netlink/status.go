package netlink

import (
	"encoding/binary"
	"fmt"
)

// Status is the kernel's struct audit_status as reported by AUDIT_GET.
// Fields a kernel does not send are zero and absent from Fields.
type Status struct {
	Mask                  uint32
	Enabled               EnabledState
	Failure               FailureMode
	PID                   uint32 // audit daemon's pid, 0 when none is registered
	RateLimit             uint32 // messages per second, 0 = unlimited
	BacklogLimit          uint32 // records, 0 = unlimited
	Lost                  uint32 // records lost since boot (or since the last reset)
	Backlog               uint32 // records queued now
	FeatureBitmap         uint32
	BacklogWaitTime       uint32 // jiffies
	BacklogWaitTimeActual uint32 // jiffies audited tasks slept, cumulative
	BacklogMaxDepth       uint32 // highest backlog seen (kernels with the 48-byte reply)
	Fields                Field  // which optional fields the kernel sent
	ReplyBytes            int
}

// Field marks the optional parts of the reply; the 32-byte core is always present.
type Field uint8

const (
	FieldFeatureBitmap Field = 1 << iota
	FieldBacklogWaitTime
	FieldBacklogWaitTimeActual
	FieldBacklogMaxDepth
)

// Has reports whether the kernel sent every field in f.
func (s Status) Has(f Field) bool { return s.Fields&f == f }

// Reply sizes by kernel generation (see ../shared/notes/kernel-audit.md).
const (
	minStatusSize = 32 // up to 3.13: mask..backlog
	size314       = 40 // 3.14: feature_bitmap, backlog_wait_time
	size59        = 44 // 5.9: backlog_wait_time_actual
	sizeMaxDepth  = 48 // backlog_max_depth
)

// EnabledState is audit_status.enabled.
type EnabledState uint32

const (
	Disabled  EnabledState = 0
	Enabled   EnabledState = 1
	Immutable EnabledState = 2 // locked until reboot (auditctl -e 2)
)

func (e EnabledState) String() string {
	return name([]string{"disabled", "enabled", "immutable"}, uint32(e))
}

// FailureMode is audit_status.failure. Defined here because go-libaudit's
// constants are wrong (its printk and panic values are both 0).
type FailureMode uint32

const (
	FailureSilent FailureMode = 0
	FailurePrintk FailureMode = 1
	FailurePanic  FailureMode = 2
)

func (f FailureMode) String() string { return name([]string{"silent", "printk", "panic"}, uint32(f)) }

// name is names[v], the name of the kernel's value v, or unknown(v).
func name(names []string, v uint32) string {
	if v < uint32(len(names)) {
		return names[v]
	}
	return fmt.Sprintf("unknown(%d)", v)
}

// parseStatus decodes an AUDIT_GET payload by its length: shorter than the
// 3.13 layout is malformed, anything longer than we know is accepted.
func parseStatus(b []byte) (Status, error) {
	if len(b) < minStatusSize {
		return Status{}, fmt.Errorf("%w: audit status is %d bytes, want at least %d", errMalformed, len(b), minStatusSize)
	}
	u := func(i int) uint32 { return binary.NativeEndian.Uint32(b[i*4:]) }
	s := Status{
		Mask:         u(0),
		Enabled:      EnabledState(u(1)),
		Failure:      FailureMode(u(2)),
		PID:          u(3),
		RateLimit:    u(4),
		BacklogLimit: u(5),
		Lost:         u(6),
		Backlog:      u(7),
		ReplyBytes:   len(b),
	}
	if len(b) >= size314 {
		s.FeatureBitmap, s.BacklogWaitTime = u(8), u(9)
		s.Fields |= FieldFeatureBitmap | FieldBacklogWaitTime
	}
	if len(b) >= size59 {
		s.BacklogWaitTimeActual = u(10)
		s.Fields |= FieldBacklogWaitTimeActual
	}
	if len(b) >= sizeMaxDepth {
		s.BacklogMaxDepth = u(11)
		s.Fields |= FieldBacklogMaxDepth
	}
	return s, nil
}
