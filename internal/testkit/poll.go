package testkit

import (
	"testing"
	"time"
)

// PollUntil checks cond every millisecond until it holds, and fails t when
// it still does not after timeout. The conditions polled are cheap (a
// counter, a flag), and the events behind them take microseconds.
func PollUntil(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
