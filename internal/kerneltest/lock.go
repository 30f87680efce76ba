package kerneltest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"auditplugin/internal/testkit"
)

// LockFile serialises every kernel-touching test on this machine: go test
// runs packages in parallel and other people test on the same machine, and
// the kernel's audit state is one global. flock is released by the kernel
// when its holder dies, even by SIGKILL, so a lock is never left stale.
const LockFile = "/run/lock/auditplugin-kernel.lock"

// lockWait bounds how long Setup and Lock wait for another holder. Within
// one `make test` the e2e tests queue for the kernel one after another (an
// overflow test holds it for minutes), so the bound only catches a holder
// that hangs; go test's own -timeout is the real limit.
const lockWait = 30 * time.Minute

// acquireLock takes the exclusive flock, polling so the wait is bounded and
// the holder can be named. Each call opens its own file description, so two
// holders in one process exclude each other too.
func acquireLock(wait time.Duration, logf func(format string, args ...any)) (*os.File, error) {
	f, err := os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	start := time.Now()
	lastLog := start
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			// Name the holder for whoever waits next; the lock is the flock,
			// not this text.
			_ = f.Truncate(0)
			_, _ = f.WriteAt([]byte(fmt.Sprintf("pid %d %s\n", os.Getpid(), strings.Join(os.Args, " "))), 0)
			return f, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", LockFile, err)
		}
		if time.Since(start) > wait {
			f.Close()
			return nil, fmt.Errorf("%s still held after %v by %s", LockFile, wait, lockHolder())
		}
		if logf != nil && time.Since(lastLog) > 10*time.Second {
			logf("kerneltest: waiting for %s, held by %s", LockFile, lockHolder())
			lastLog = time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tryLock reports whether the lock is free right now (and takes it if so).
func tryLock() (*os.File, bool, error) {
	f, err := os.OpenFile(LockFile, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, false, nil
		}
		return nil, false, err
	}
	return f, true, nil
}

func releaseLock(f *os.File) {
	if f == nil {
		return
	}
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}

func lockHolder() string {
	b, err := os.ReadFile(LockFile)
	if err != nil || len(b) == 0 {
		return "an unknown process"
	}
	return strings.TrimSpace(string(b))
}

// Lock takes the machine-wide kernel test lock for the rest of t (released
// in t.Cleanup), for tests that only read the audit state but need nobody
// else changing it meanwhile. It skips without root and first repairs a
// state left by a killed run (see RecoverLeftover).
func Lock(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	lockForTest(t)
}

// RequireWaitTimeActual skips t unless the kernel's audit status carries
// backlog_wait_time_actual (a 44-byte reply, Linux 5.9+), which the
// plugin's stall alert reads, or when the status cannot be read.
func RequireWaitTimeActual(t testing.TB) {
	t.Helper()
	if st, err := ReadStatus(); err != nil {
		t.Skipf("skipping: cannot read the kernel audit status: %v", err)
	} else if st.ReplyBytes < 44 {
		t.Skipf("skipping: the kernel's %d-byte audit status has no backlog_wait_time_actual (Linux 5.9+)", st.ReplyBytes)
	}
}

// RequireRoot skips t unless the process runs as root (the audit netlink
// commands need CAP_AUDIT_CONTROL in the initial namespaces). It also skips
// under -short: real-kernel tests are not part of the quick unit run.
func RequireRoot(t testing.TB) {
	t.Helper()
	testkit.RequireRoot(t, "the kernel audit tests send AUDIT_GET/AUDIT_SET")
}

// lockForTest takes the lock for the rest of t (released in t.Cleanup) and
// repairs a state left by a killed run: the start of both Lock and Setup.
func lockForTest(t testing.TB) *os.File {
	t.Helper()
	f, err := acquireLock(lockWait, t.Logf)
	if err != nil {
		t.Fatalf("kerneltest: %v", err)
	}
	t.Cleanup(func() { releaseLock(f) })
	if err := recoverLeftoverLocked(); err != nil {
		t.Fatalf("kerneltest: %v", err)
	}
	return f
}
