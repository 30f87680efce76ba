package netlink

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
)

// TestIntegrationClientUnderSenderPenalty runs the real socket through the
// sender penalty: the backlog far over its limit with backlog_wait_time 250
// jiffies (1 s at HZ=250), so the kernel holds every sending thread asleep
// after queueing its reply. Status must still answer at once (the receiver
// reads the reply while the sender sleeps), the held sends must stay within
// the bound, a query beyond it must fail fast with ErrHeld, and Close must
// not wait for the held threads.
func TestIntegrationClientUnderSenderPenalty(t *testing.T) {
	needRoot(t)
	// Created before Setup, so removed after its restore (cleanups run last
	// in, first out): the kernel drops a dir= rule whose directory goes.
	dir, err := os.MkdirTemp("", "auditplugin-netlink-penalty-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	const waitJiffies = 250
	k := kerneltest.Setup(t, kerneltest.Settings{Enabled: 1, BacklogLimit: 1000, BacklogWaitTime: waitJiffies})
	k.AddRule(dir, "auditplugin-netlink-penalty")
	k.RegisterStalledDaemon()
	for range 2 {
		go k.Generate(20000, dir) // killed by the restore
	}
	kerneltest.WaitBacklog(t, 950, 20*time.Second)
	// A limit far below the queue: every sender is over it now.
	k.Set(kerneltest.Settings{Enabled: 1, BacklogLimit: 100, BacklogWaitTime: waitJiffies})

	const maxSenders = 2
	conn, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	c := New(conn, NewSenderLimit(maxSenders))
	answered, held := 0, 0
	for i := range 4 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		start := time.Now()
		s, err := c.Status(ctx)
		took := time.Since(start)
		cancel()
		p := c.Penalty()
		t.Logf("query %d: %v after %v (backlog %d of %d); %d held", i, err, took.Round(time.Millisecond), s.Backlog, s.BacklogLimit, p.Held)
		switch {
		case err == nil:
			answered++
			if took > 300*time.Millisecond {
				t.Errorf("query %d answered after %v: the reply waited for the held sender", i, took)
			}
		case errors.Is(err, ErrHeld):
			held++
			if took > 10*time.Millisecond {
				t.Errorf("ErrHeld after %v, want at once", took)
			}
		default:
			t.Errorf("query %d: %v", i, err)
		}
		if p.Held > maxSenders {
			t.Errorf("%d sends held, more than the bound %d", p.Held, maxSenders)
		}
	}
	if answered < maxSenders || held == 0 {
		t.Errorf("%d answered, %d refused as held: want the first %d answered despite the penalty, then ErrHeld", answered, held, maxSenders)
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Close took %v with sends held in the kernel", d)
	}
}
