package kerneltest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// RecoveryFile holds the audit state found before a setup changed anything.
// It is written before the first change and removed after a verified
// restore, so its presence (with nobody holding LockFile) means a run died
// without restoring: SIGKILL, a test timeout, a panic outside the test
// goroutine.
const RecoveryFile = "/run/auditplugin-kerneltest.json"

// drainWait bounds how long a restore waits for the backlog to fall to the
// original limit before it puts the original backlog_wait_time back.
const drainWait = 10 * time.Second

// snapshot is what a restore puts back.
type snapshot struct {
	Enabled         uint32 `json:"enabled"`
	Failure         uint32 `json:"failure"` // never changed; verified only
	PID             uint32 `json:"pid"`
	RateLimit       uint32 `json:"rate_limit"`
	BacklogLimit    uint32 `json:"backlog_limit"`
	BacklogWaitTime uint32 `json:"backlog_wait_time"`
	Rules           int    `json:"rules"`
}

type addedRule struct {
	Key  string `json:"key"`
	Wire []byte `json:"wire"` // struct audit_rule_data as sent with AUDIT_ADD_RULE
}

type recoveryState struct {
	OwnerPID int         `json:"owner_pid"` // its stalled daemon, if any, is registered under this pid
	Started  time.Time   `json:"started"`
	Original snapshot    `json:"original"`
	Rules    []addedRule `json:"added_rules"` // recorded before each AUDIT_ADD_RULE is sent
}

func snapshotOf(s Status) snapshot {
	return snapshot{
		Enabled: s.Enabled, Failure: s.Failure, PID: s.PID, RateLimit: s.RateLimit,
		BacklogLimit: s.BacklogLimit, BacklogWaitTime: s.BacklogWaitTime, Rules: s.Rules,
	}
}

// writeRecovery replaces the file atomically and syncs it: it must survive
// the SIGKILL that makes it useful.
func writeRecovery(st *recoveryState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(RecoveryFile)
	f, err := os.CreateTemp(dir, ".auditplugin-kerneltest-*.json")
	if err != nil {
		return fmt.Errorf("recovery file: %w", err)
	}
	tmp := f.Name()
	if _, err := f.Write(append(b, '\n')); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, RecoveryFile)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recovery file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func readRecovery() (*recoveryState, error) {
	b, err := os.ReadFile(RecoveryFile)
	if err != nil {
		return nil, err
	}
	var st recoveryState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s is malformed (%v); check the audit state with audit-status.py and remove it by hand", RecoveryFile, err)
	}
	return &st, nil
}

// RecoverLeftover restores the audit state recorded in RecoveryFile by a
// run that died before restoring, then removes the file. Without a file it
// does nothing. It takes LockFile (waiting for a live run to finish) so it
// never undoes a setup in progress. cmd/audit-restore calls it for CI.
func RecoverLeftover() error {
	if _, err := os.Stat(RecoveryFile); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	f, err := acquireLock(lockWait, func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	})
	if err != nil {
		return err
	}
	defer releaseLock(f)
	return recoverLeftoverLocked()
}

// recoverLeftoverLocked is RecoverLeftover for a caller that holds the lock.
func recoverLeftoverLocked() error {
	st, err := readRecovery()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if errs := restore(st, nil); len(errs) > 0 {
		return fmt.Errorf("restoring the audit state left by pid %d (started %s) from %s: %w",
			st.OwnerPID, st.Started.Format(time.RFC3339), RecoveryFile, errors.Join(errs...))
	}
	if err := os.Remove(RecoveryFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// restore puts st.Original back and returns every problem it met, checking
// the result by reading the state back. daemon is this process's stalled
// daemon socket, if any.
//
// The order is chosen for the sender penalty: while the backlog is over its
// limit and backlog_wait_time > 0, the kernel puts the sender of ANY audit
// netlink message to sleep (uninterruptibly) for up to backlog_wait_time,
// after handling the message and with the wait time in force by then.
//  1. Close our stalled daemon socket. This sends nothing; the kernel drops
//     the registration at its next send to it (ECONNREFUSED) and stops
//     queueing for a reader that will never read.
//  2. backlog_wait_time=0 first: this very message then costs no sleep, and
//     neither does any later one, whatever the backlog does.
//  3. enabled back (normally 0): no new syscall records.
//  4. Unregister the daemon if the kernel still names its pid.
//  5. Delete only the rules that were added.
//  6. rate_limit and backlog_limit back.
//  7. Wait (bounded) for the backlog to fall to the original limit, so
//  8. the original backlog_wait_time, set last, penalises nobody.
//  9. Read everything back and compare.
//
// Every request is bounded (requestTimeout), and a reply is read even while
// its sender is held by the penalty, so no step can hang the restore.
func restore(st *recoveryState, daemon *conn) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	orig := st.Original

	if daemon != nil {
		daemon.close()
	}
	c, err := dial(0)
	if err != nil {
		return []error{err}
	}
	defer c.close()

	// Zero the wait time before anything else, the status read included:
	// while the backlog is over its limit every other message would be held
	// for the old wait time, and the sends queue behind each other. This one
	// is not held (the kernel decides with the wait time it just set).
	waitErr := c.set(maskBacklogWaitTime, 0)
	cur, readErr := c.status(nil)
	if readErr != nil {
		// Keep going: every step below is worth trying blind.
		fail("read status before restore: %v", readErr)
	}
	blind := readErr != nil
	if cur.Enabled == 2 {
		return append(errs, fmt.Errorf("audit is immutable (enabled=2) now; nothing can be restored until reboot"))
	}
	if waitErr != nil {
		fail("set backlog_wait_time=0: %v", waitErr)
	}
	if blind || cur.Enabled != orig.Enabled {
		if err := c.set(maskEnabled, orig.Enabled); err != nil {
			fail("restore enabled=%d: %v", orig.Enabled, err)
		}
	}
	if cur2, err := c.status(nil); err != nil {
		fail("read status: %v", err)
	} else if cur2.PID != orig.PID && cur2.PID != 0 && int(cur2.PID) == st.OwnerPID {
		// The kernel lets only the daemon's own process unregister it, but
		// it first probes the registered socket; a closed one (ours above,
		// or a dead process's) is dropped by that probe, after which pid=0
		// is accepted from anyone.
		if err := c.set(maskPID, 0); err != nil {
			fail("unregister stalled daemon (pid %d): %v", cur2.PID, err)
		}
	}
	for _, r := range st.Rules {
		err := c.do(requestTimeout, ackRequest(auditDelRule, r.Wire))
		// ENOENT: never added (killed between recording and adding), or
		// the kernel dropped it when its directory was deleted.
		if err != nil && !errors.Is(err, syscall.ENOENT) {
			fail("delete rule key=%s: %v", r.Key, err)
		}
	}
	if blind || cur.RateLimit != orig.RateLimit {
		if err := c.set(maskRateLimit, orig.RateLimit); err != nil {
			fail("restore rate_limit=%d: %v", orig.RateLimit, err)
		}
	}
	if blind || cur.BacklogLimit != orig.BacklogLimit {
		if err := c.set(maskBacklogLimit, orig.BacklogLimit); err != nil {
			fail("restore backlog_limit=%d: %v", orig.BacklogLimit, err)
		}
	}
	if orig.BacklogWaitTime != 0 && orig.BacklogLimit != 0 {
		deadline := time.Now().Add(drainWait)
		for {
			s, err := c.status(nil)
			if err == nil && s.Backlog <= orig.BacklogLimit {
				break
			}
			if time.Now().After(deadline) {
				// Not a failure by itself: the setting below still takes
				// effect (its sender may be held, its ACK is not).
				fmt.Fprintf(os.Stderr, "kerneltest: backlog still %d > %d after %v; restoring backlog_wait_time anyway\n",
					s.Backlog, orig.BacklogLimit, drainWait)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := c.set(maskBacklogWaitTime, orig.BacklogWaitTime); err != nil {
		fail("restore backlog_wait_time=%d: %v", orig.BacklogWaitTime, err)
	}

	return append(errs, verify(c, st)...)
}

// verify compares the kernel with the snapshot and looks for added rules.
func verify(c *conn, st *recoveryState) []error {
	var rules [][]byte
	s, err := c.status(&rules)
	if err != nil {
		return []error{fmt.Errorf("read status after restore: %w", err)}
	}
	got, want := snapshotOf(s), st.Original
	var errs []error
	check := func(name string, g, w uint32) {
		if g != w {
			errs = append(errs, fmt.Errorf("after restore %s=%d, want %d", name, g, w))
		}
	}
	check("enabled", got.Enabled, want.Enabled)
	check("failure", got.Failure, want.Failure)
	check("pid", got.PID, want.PID)
	check("rate_limit", got.RateLimit, want.RateLimit)
	check("backlog_limit", got.BacklogLimit, want.BacklogLimit)
	check("backlog_wait_time", got.BacklogWaitTime, want.BacklogWaitTime)
	if got.Rules != want.Rules {
		errs = append(errs, fmt.Errorf("after restore %d audit rules are loaded, want %d", got.Rules, want.Rules))
	}
	for _, r := range st.Rules {
		for _, k := range rules {
			if bytes.Contains(k, []byte(r.Key)) {
				errs = append(errs, fmt.Errorf("rule with key %s is still loaded", r.Key))
			}
		}
	}
	return errs
}
