package kerneltest

import (
	"encoding/binary"
	"fmt"
)

// Status is the kernel's audit state as read by this package's own reader,
// independent of the plugin's client: the fields of struct audit_status in
// the kernel's order (mask first, then enabled, failure, pid, ...), as the
// reference reader audit-status.py prints them (TestIntegrationReadStatusMatchesTool
// compares the two). Fields the kernel did not send (see ReplyBytes) are zero.
type Status struct {
	Enabled               uint32 // 0 off, 1 on, 2 immutable
	Failure               uint32 // 0 silent, 1 printk, 2 panic
	PID                   uint32 // registered audit daemon, 0 for none
	RateLimit             uint32 // records per second, 0 = unlimited
	BacklogLimit          uint32 // records, 0 = unlimited
	Lost                  uint32 // records lost since boot (or last reset)
	Backlog               uint32 // records queued now
	FeatureBitmap         uint32 // reply >= 40 bytes
	BacklogWaitTime       uint32 // jiffies; reply >= 40 bytes
	BacklogWaitTimeActual uint32 // jiffies slept, cumulative; reply >= 44 bytes
	BacklogMaxDepth       uint32 // reply >= 48 bytes (not merged upstream yet)
	ReplyBytes            int    // payload size of the AUDIT_GET reply
	Rules                 int    // loaded rules (AUDIT_LIST_RULES); -1 if not read
}

func (s Status) String() string {
	return fmt.Sprintf("enabled=%d failure=%d pid=%d rate_limit=%d backlog_limit=%d lost=%d backlog=%d "+
		"backlog_wait_time=%d backlog_wait_time_actual=%d backlog_max_depth=%d reply_bytes=%d rules=%d",
		s.Enabled, s.Failure, s.PID, s.RateLimit, s.BacklogLimit, s.Lost, s.Backlog,
		s.BacklogWaitTime, s.BacklogWaitTimeActual, s.BacklogMaxDepth, s.ReplyBytes, s.Rules)
}

// parseStatus decodes struct audit_status by the reply's length: 32 bytes up
// to 3.13, 40 from 3.14, 44 from 5.9, 48 with backlog_max_depth; anything
// longer is accepted and the extra ignored.
func parseStatus(b []byte) (Status, error) {
	if len(b) < 32 {
		return Status{}, fmt.Errorf("audit status reply is %d bytes, want at least 32", len(b))
	}
	u := func(i int) uint32 {
		if (i+1)*4 > len(b) {
			return 0
		}
		return binary.NativeEndian.Uint32(b[i*4:])
	}
	return Status{
		// u(0) is the mask, meaningless in a reply.
		Enabled:               u(1),
		Failure:               u(2),
		PID:                   u(3),
		RateLimit:             u(4),
		BacklogLimit:          u(5),
		Lost:                  u(6),
		Backlog:               u(7),
		FeatureBitmap:         u(8),
		BacklogWaitTime:       u(9),
		BacklogWaitTimeActual: u(10),
		BacklogMaxDepth:       u(11),
		ReplyBytes:            len(b),
		Rules:                 -1,
	}, nil
}

// ReadStatus reads AUDIT_GET and counts the loaded rules with
// AUDIT_LIST_RULES over a fresh raw netlink socket. It is independent of
// go-libaudit and of package netlink, so tests can cross-check them with it.
// It needs CAP_AUDIT_CONTROL. While the backlog is over its limit with
// backlog_wait_time > 0 the kernel makes every sender sleep; the reply is
// queued before that sleep and read here at once, but the sending thread
// (and the socket) stay behind until the kernel lets them go.
func ReadStatus() (Status, error) {
	c, err := dial(0)
	if err != nil {
		return Status{}, err
	}
	defer c.close()
	var rules [][]byte
	return c.status(&rules)
}
