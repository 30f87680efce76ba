package kerneltest

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// timedSend sends one request with a plain blocking sendto and reports how
// long the send itself took (the sender penalty) and when its reply (or
// ACK) became readable on another goroutine.
func timedSend(t *testing.T, typ uint16, flags uint16, payload []byte) (send, reply time.Duration, data []byte) {
	t.Helper()
	if err := checkRequest(typ, payload); err != nil {
		t.Fatal(err)
	}
	c, err := dial(0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	h := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(payload))
	binary.NativeEndian.PutUint32(h[0:], uint32(unix.SizeofNlMsghdr+len(payload)))
	binary.NativeEndian.PutUint16(h[4:], typ)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], 42)
	h = append(h, payload...)
	type result struct {
		at   time.Duration
		data []byte
	}
	got := make(chan result, 1)
	start := time.Now()
	go func() {
		buf := make([]byte, 1<<16)
		for time.Since(start) < 30*time.Second {
			msgs, err := c.recv(buf)
			if err != nil {
				break
			}
			for _, m := range msgs {
				if m.seq == 42 && (m.typ == typ || m.typ == unix.NLMSG_ERROR) {
					got <- result{time.Since(start), append([]byte(nil), m.data...)}
					return
				}
			}
		}
		got <- result{at: -1}
	}()
	c.pending.Add(1)
	err = unix.Sendto(c.fd, h, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	send = time.Since(start)
	c.pending.Done()
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	return send, r.at, r.data
}

// TestIntegrationRestoreUnderSenderPenalty holds the backlog far over its
// limit with backlog_wait_time 250 jiffies (1 s at HZ=250), so the kernel
// puts every sender of an audit netlink message to sleep for up to 1 s. It
// checks what the restore relies on (the reply is readable before the
// sender sleeps; a message that sets backlog_wait_time=0 is not held) and
// that the restore is quick and complete.
func TestIntegrationRestoreUnderSenderPenalty(t *testing.T) {
	RequireRoot(t)
	before := lockedStatus(t)
	t.Run("penalty", func(t *testing.T) {
		const waitJiffies = 250
		k := Setup(t, Settings{Enabled: 1, BacklogLimit: 1000, BacklogWaitTime: waitJiffies})
		dir := k.scratchDir()
		k.AddRule(dir, "auditplugin-kerneltest-penalty")
		k.RegisterStalledDaemon()
		const gens = 2
		genDone := make(chan error, gens)
		for range gens {
			go func() { genDone <- k.Generate(20000, dir) }()
		}
		WaitBacklog(t, 950, 20*time.Second)
		// A limit far below the queue: every sender is over it now.
		k.Set(Settings{Enabled: 1, BacklogLimit: 100, BacklogWaitTime: waitJiffies})

		send, reply, data := timedSend(t, auditGet, unix.NLM_F_REQUEST, nil)
		st, _ := parseStatus(data)
		t.Logf("AUDIT_GET: send held %v, reply readable after %v (backlog %d, limit %d)",
			send.Round(time.Millisecond), reply.Round(time.Millisecond), st.Backlog, st.BacklogLimit)
		if send > 500*time.Millisecond && reply > 300*time.Millisecond {
			t.Errorf("the reply was held with the sender: %v", reply)
		}
		start := time.Now()
		_, err := ReadStatus()
		t.Logf("ReadStatus under the penalty: %v, err %v", time.Since(start).Round(time.Millisecond), err)
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("ReadStatus took %v under the penalty", d)
		}
		ack := unix.NLM_F_REQUEST | unix.NLM_F_ACK
		send, reply, _ = timedSend(t, auditSet, uint16(ack), setPayload(maskBacklogWaitTime, 0))
		t.Logf("AUDIT_SET backlog_wait_time=0: send held %v, ACK after %v", send.Round(time.Millisecond), reply.Round(time.Millisecond))
		if send > 200*time.Millisecond {
			t.Errorf("setting backlog_wait_time=0 was itself held %v", send)
		}
		send, reply, _ = timedSend(t, auditSet, uint16(ack), setPayload(maskBacklogWaitTime, waitJiffies))
		t.Logf("AUDIT_SET backlog_wait_time=%d: send held %v, ACK after %v", waitJiffies, send.Round(time.Millisecond), reply.Round(time.Millisecond))

		s, _ := ReadStatus()
		t.Logf("restoring from: %v", s)
		start = time.Now()
		errs := k.restore()
		took := time.Since(start)
		t.Logf("restore under the penalty took %v", took.Round(time.Millisecond))
		for _, err := range errs {
			t.Error(err)
		}
		if took > 5*time.Second {
			t.Errorf("restore took %v", took)
		}
		for range gens {
			select {
			case err := <-genDone:
				t.Logf("generator after the restore: %v", err)
			case <-time.After(30 * time.Second):
				t.Error("generator still running 30 s after the restore killed it")
			}
		}
	})
	sameSettings(t, "after cleanup", lockedStatus(t), before)
	noRecoveryFile(t)
}
