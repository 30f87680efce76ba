package netlink

import (
	"context"
	"errors"
	"fmt"
	"syscall"
)

// typeListRules is AUDIT_LIST_RULES: the request, and one reply per loaded
// rule (struct audit_rule_data, flagged NLM_F_MULTI), then NLMSG_DONE.
const typeListRules = 1013

// ErrRulesBusy: an earlier rule listing is still asleep in the kernel.
var ErrRulesBusy = errors.New("an earlier rule listing is still held by the kernel")

// ruleListSlot allows one rule listing per process at a time, held from the
// send until the kernel lets the sending thread go. A stall that lasts
// backlog_wait_time then costs one sleeping thread, however often the
// listing is asked for.
var ruleListSlot = make(chan struct{}, 1)

// listRulesBuffer holds one rule reply: struct audit_rule_data is 1,040 bytes
// plus its strings (paths, keys), each at most PATH_MAX.
const listRulesBuffer = 64 << 10

// CountRules returns the number of audit rules loaded in the kernel. It only
// reads (AUDIT_LIST_RULES needs CAP_AUDIT_CONTROL, like AUDIT_GET) and never
// waits beyond ctx, even while the kernel holds the sending thread asleep:
// the listing is sent from its own goroutine over its own socket, which is
// closed once the send returns.
func CountRules(ctx context.Context) (int, error) {
	select {
	case ruleListSlot <- struct{}{}:
	default:
		return 0, fmt.Errorf("list audit rules: %w", ErrRulesBusy)
	}
	s, err := dial()
	if err != nil {
		<-ruleListSlot
		return 0, err
	}
	s.buf = make([]byte, listRulesBuffer)
	return countRules(ctx, s, func() { <-ruleListSlot })
}

// countRules sends AUDIT_LIST_RULES on conn, a connection used for nothing
// else, and counts the replies until NLMSG_DONE or ctx is done. It closes
// conn and calls release once the send has returned, however long the
// kernel keeps it.
func countRules(ctx context.Context, conn Conn, release func()) (int, error) {
	if err := ctx.Err(); err != nil {
		conn.Close()
		release()
		return 0, fmt.Errorf("list audit rules: %w (%w)", ErrTimeout, err)
	}
	sent := make(chan error, 1)
	received := make(chan struct{})
	go func() {
		err := conn.Send(listRulesRequest())
		sent <- err
		<-received // the socket stays open while we may still read it
		conn.Close()
		release()
	}()
	defer close(received)

	// A waiting Receive returns as soon as ctx is done.
	stopWatch := context.AfterFunc(ctx, func() {
		if i, ok := conn.(interface{ Interrupt() }); ok {
			i.Interrupt()
		}
	})
	defer stopWatch()

	var n int
	for {
		select {
		case err := <-sent:
			if err != nil {
				return 0, sendListError(err)
			}
			sent = nil // sent; keep reading
		default:
		}
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("list audit rules: %w (%w)", ErrTimeout, err)
		}
		b, err := conn.Receive()
		switch {
		case err == nil:
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR), errors.Is(err, ErrStray):
			continue
		default:
			return 0, fmt.Errorf("list audit rules: receive: %w", err)
		}
		more, done, err := parseRuleReplies(b)
		n += more
		if err != nil {
			return 0, fmt.Errorf("list audit rules: %w", err)
		}
		if done {
			return n, nil
		}
	}
}

func sendListError(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return classifyErrno("send audit rule listing request", errno)
	}
	return fmt.Errorf("send audit rule listing request: %w", err)
}

// parseRuleReplies counts the AUDIT_LIST_RULES messages of one datagram and
// reports whether it ended the listing (NLMSG_DONE). An NLMSG_ERROR with an
// errno ends it with that error; an ACK (errno 0) and other types are
// skipped. The rules themselves are not decoded: only their number is used.
func parseRuleReplies(b []byte) (rules int, done bool, err error) {
	msgs, perr := parseMessages(b)
	for _, m := range msgs {
		switch m.Header.Type {
		case typeListRules:
			rules++
		case typeDone:
			return rules, true, nil
		case typeError:
			errno, err := parseError(m.Data)
			if err != nil {
				return rules, true, err
			}
			if errno != 0 {
				return rules, true, classifyErrno("list audit rules", errno)
			}
		}
	}
	if perr != nil {
		// A rule may have been lost in the malformed part: the count would be wrong.
		return rules, true, perr
	}
	return rules, false, nil
}

// listRulesRequest is AUDIT_LIST_RULES; the kernel answers a dump without
// NLM_F_DUMP. Its connection carries nothing else, so any number will do.
func listRulesRequest() syscall.NetlinkMessage {
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: typeListRules, Flags: syscall.NLM_F_REQUEST, Seq: 1}}
}
