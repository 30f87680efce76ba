package netlink

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/netlink/nltest"
)

// ruleData is a stand-in struct audit_rule_data payload; only its presence counts.
func ruleData(key string) []byte {
	b := make([]byte, 1040+len(key))
	copy(b[1040:], key)
	return b
}

func listReply(seq uint32, key string) []byte {
	return nltest.Message(typeListRules, syscall.NLM_F_MULTI, seq, 0, ruleData(key))
}

func done(seq uint32) []byte {
	return nltest.Message(syscall.NLMSG_DONE, syscall.NLM_F_MULTI, seq, 0, make([]byte, 4))
}

func TestParseRuleReplies(t *testing.T) {
	req := syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typeListRules, Flags: syscall.NLM_F_REQUEST, Seq: 1}}
	tests := []struct {
		name      string
		b         []byte
		rules     int
		done      bool
		errIs     error
		errnoWant syscall.Errno
	}{
		{"one rule", listReply(1, "k1"), 1, false, nil, 0},
		{"two rules in one datagram", nltest.Datagram(listReply(1, "a"), listReply(1, "b")), 2, false, nil, 0},
		{"done alone", done(1), 0, true, nil, 0},
		{"rule then done", nltest.Datagram(listReply(1, "a"), done(1)), 1, true, nil, 0},
		{"ack is skipped", nltest.Ack(req), 0, false, nil, 0},
		{"eperm", nltest.Error(req, syscall.EPERM), 0, true, nil, syscall.EPERM},
		{"unknown type skipped", nltest.Message(1000, 0, 1, 0, make([]byte, 44)), 0, false, nil, 0},
		{"truncated header", listReply(1, "a")[:10], 0, true, errMalformed, 0},
		{"rule then garbage", append(listReply(1, "a"), 1, 2, 3), 1, true, errMalformed, 0},
		{"error with short payload", nltest.Message(syscall.NLMSG_ERROR, 0, 1, 0, []byte{1}), 0, true, errMalformed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, d, err := parseRuleReplies(tt.b)
			if n != tt.rules || d != tt.done {
				t.Errorf("parseRuleReplies = %d rules, done %v; want %d, %v", n, d, tt.rules, tt.done)
			}
			switch {
			case tt.errIs != nil && !errors.Is(err, tt.errIs):
				t.Errorf("err = %v, want %v", err, tt.errIs)
			case tt.errnoWant != 0 && !errors.Is(err, tt.errnoWant):
				t.Errorf("err = %v, want errno %v", err, tt.errnoWant)
			case tt.errIs == nil && tt.errnoWant == 0 && err != nil:
				t.Errorf("err = %v, want nil", err)
			}
		})
	}
}

// TestGoldenRuleReplies parses the datagrams a real kernel sent for a
// listing with one rule loaded (testdata/README).
func TestGoldenRuleReplies(t *testing.T) {
	rule := golden(t, "audit_list_rules_rule.bin")
	end := golden(t, "audit_list_rules_done.bin")
	n, d, err := parseRuleReplies(rule)
	if n != 1 || d || err != nil {
		t.Errorf("rule datagram: %d rules, done %v, %v; want 1, false, nil", n, d, err)
	}
	msgs, _ := parseMessages(rule)
	if len(msgs) != 1 || msgs[0].Header.Flags&syscall.NLM_F_MULTI == 0 || msgs[0].Header.Seq != captureSeq {
		t.Errorf("rule message header %+v: want one NLM_F_MULTI message with seq %#x", msgs, captureSeq)
	}
	n, d, err = parseRuleReplies(end)
	if n != 0 || !d || err != nil {
		t.Errorf("done datagram: %d rules, done %v, %v; want 0, true, nil", n, d, err)
	}
}

func FuzzParseRuleReplies(f *testing.F) {
	f.Add(listReply(1, "k"))
	f.Add(nltest.Datagram(listReply(1, "a"), listReply(2, "b"), done(2)))
	f.Add(done(1))
	f.Add(listReply(1, "a")[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		n, d, err := parseRuleReplies(b)
		msgs, perr := parseMessages(b)
		if n < 0 || n > len(msgs) {
			t.Fatalf("%d rules from %d messages", n, len(msgs))
		}
		sawDone := false
		for _, m := range msgs {
			sawDone = sawDone || m.Header.Type == typeDone
		}
		// A malformed datagram ends the listing: with an error, unless
		// NLMSG_DONE came before the malformed part.
		if perr != nil && (!d || (err == nil && !sawDone)) {
			t.Fatalf("malformed datagram (%v) gave done %v, err %v", perr, d, err)
		}
		if err != nil && !d {
			t.Fatalf("an error must end the listing: %v", err)
		}
	})
}

// heldConn wraps an nltest.Conn whose Send blocks until release is closed,
// as the kernel holds a sender while the backlog is over its limit. The
// replies are queued before the hold, as the kernel does.
type heldConn struct {
	*nltest.Conn
	release chan struct{}
	closed  atomic.Bool
}

func (h *heldConn) Send(req syscall.NetlinkMessage) error {
	err := h.Conn.Send(req)
	<-h.release
	return err
}

func (h *heldConn) Close() error { h.closed.Store(true); return h.Conn.Close() }

func TestCountRulesFake(t *testing.T) {
	answer := func(rules int, split bool) nltest.Func {
		return func(req syscall.NetlinkMessage) ([][]byte, error) {
			if req.Header.Type != typeListRules || req.Header.Flags != syscall.NLM_F_REQUEST {
				t.Errorf("request %+v, want AUDIT_LIST_RULES with NLM_F_REQUEST only", req.Header)
			}
			var out [][]byte
			for i := range rules {
				out = append(out, listReply(req.Header.Seq, string(rune('a'+i))))
			}
			out = append(out, done(req.Header.Seq))
			if !split {
				return [][]byte{nltest.Datagram(out...)}, nil
			}
			return out, nil
		}
	}
	for _, tt := range []struct {
		name  string
		rules int
		split bool
	}{{"none", 0, true}, {"three datagrams", 3, true}, {"three in one", 3, false}} {
		t.Run(tt.name, func(t *testing.T) {
			conn := nltest.Dial(answer(tt.rules, tt.split))
			released := make(chan struct{})
			n, err := countRules(context.Background(), conn, func() { close(released) })
			if err != nil || n != tt.rules {
				t.Fatalf("countRules = %d, %v; want %d", n, err, tt.rules)
			}
			<-released
			if reqs := conn.Requests(); len(reqs) != 1 {
				t.Errorf("%d requests, want 1", len(reqs))
			}
		})
	}

	t.Run("permission", func(t *testing.T) {
		conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
			return [][]byte{nltest.Error(req, syscall.EPERM)}, nil
		})
		_, err := countRules(context.Background(), conn, func() {})
		if !errors.Is(err, ErrPermission) && !errors.Is(err, ErrNamespace) {
			t.Fatalf("err = %v, want a permission error", err)
		}
	})

	t.Run("send fails", func(t *testing.T) {
		conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) { return nil, syscall.ENOBUFS })
		_, err := countRules(context.Background(), conn, func() {})
		if !errors.Is(err, syscall.ENOBUFS) {
			t.Fatalf("err = %v, want ENOBUFS", err)
		}
	})

	// The kernel holds the sender and never answers: the caller gets a
	// timeout at its deadline; the socket closes and the slot is released
	// only when the kernel lets the sender go.
	t.Run("held without reply", func(t *testing.T) {
		h := &heldConn{Conn: nltest.Dial(func(syscall.NetlinkMessage) ([][]byte, error) { return nil, nil }), release: make(chan struct{})}
		released := make(chan struct{})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := countRules(ctx, h, func() { close(released) })
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("countRules returned after %v, want about its 100ms deadline", d)
		}
		select {
		case <-released:
			t.Fatal("slot released while the kernel still holds the sender")
		case <-time.After(50 * time.Millisecond):
		}
		if h.closed.Load() {
			t.Fatal("socket closed under a held sender")
		}
		close(h.release)
		<-released
		if !h.closed.Load() {
			t.Error("socket not closed after the held send returned")
		}
	})

	// The reply is queued before the hold: the count arrives at once.
	t.Run("held with reply", func(t *testing.T) {
		h := &heldConn{Conn: nltest.Dial(answer(2, true)), release: make(chan struct{})}
		released := make(chan struct{})
		n, err := countRules(context.Background(), h, func() { close(released) })
		if err != nil || n != 2 {
			t.Fatalf("countRules = %d, %v; want 2", n, err)
		}
		close(h.release)
		<-released
	})
}

// TestCountRulesBusy: while one listing is held, another is refused at once.
func TestCountRulesBusy(t *testing.T) {
	ruleListSlot <- struct{}{}
	defer func() { <-ruleListSlot }()
	start := time.Now()
	_, err := CountRules(context.Background())
	if !errors.Is(err, ErrRulesBusy) || time.Since(start) > time.Second {
		t.Fatalf("CountRules = %v after %v, want ErrRulesBusy at once", err, time.Since(start))
	}
}

// TestIntegrationCountRules adds a rule on the real kernel and counts it,
// against kerneltest's independent reader. With AUDITPLUGIN_CAPTURE_RULES=dir
// it also saves the raw datagrams as golden files (testdata/README).
func TestIntegrationCountRules(t *testing.T) {
	needRoot(t)
	dir, err := os.MkdirTemp("", "auditplugin-rules-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the restore, which deletes the rule
	k := kerneltest.Setup(t, kerneltest.Settings{BacklogLimit: 64, BacklogWaitTime: 15000})
	before, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n0, err := CountRules(ctx)
	if err != nil || n0 != before.Rules {
		t.Fatalf("CountRules before = %d, %v; kerneltest reads %d", n0, err, before.Rules)
	}
	k.AddRule(dir, "auditplugin-rules-test")
	after, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	n1, err := CountRules(ctx)
	if err != nil || n1 != n0+1 || n1 != after.Rules {
		t.Fatalf("CountRules after adding one = %d, %v; want %d (kerneltest reads %d)", n1, err, n0+1, after.Rules)
	}
	if out := os.Getenv("AUDITPLUGIN_CAPTURE_RULES"); out != "" && n1 == 1 {
		captureRuleListing(t, out)
	}
}

// captureRuleListing saves the datagrams of one AUDIT_LIST_RULES with bare
// syscalls (not the code under test), as TestCapture does for AUDIT_GET.
func captureRuleListing(t *testing.T, dir string) {
	fd := captureRequest(t, typeListRules)
	buf := make([]byte, 65536)
	for _, name := range []string{"audit_list_rules_rule.bin", "audit_list_rules_done.bin"} {
		for {
			n, _, err := syscall.Recvfrom(fd, buf, 0)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), buf[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("saved %d bytes to %s", n, name)
			break
		}
	}
}
