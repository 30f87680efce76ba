package kerneltest

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/elastic/go-libaudit/v2/rule"
)

// Settings are the audit_status fields a test may change. There is no
// failure mode here on purpose: mode 2 panics the machine on the first lost
// record, and no test needs another mode.
type Settings struct {
	Enabled         uint32 // 0 or 1; 2 (immutable until reboot) is refused
	BacklogLimit    uint32 // records; 0 = unlimited
	BacklogWaitTime uint32 // jiffies (CONFIG_HZ per second; 250 here)
	RateLimit       uint32 // records per second; 0 = unlimited
}

// OverflowSettings is the recipe of the incident: audit on, a 1,000-record
// backlog and no waiting, so records are lost instead of stalling the load.
func OverflowSettings() Settings {
	return Settings{Enabled: 1, BacklogLimit: 1000}
}

// Kernel is one test's hold on the kernel audit subsystem, from Setup until
// its cleanup has restored everything.
type Kernel struct {
	t    testing.TB
	lock *os.File

	mu       sync.Mutex // guards everything below and serialises restore
	state    recoveryState
	settings Settings
	daemon   *conn
	// daemonStop stops a reading daemon's goroutine before its socket closes.
	daemonStop func()
	cmds       map[*exec.Cmd]struct{}
	dirs       []string
	restored   bool
	stopSig    chan struct{}
}

// timeoutMargin is how long before go test's -timeout the state is restored.
const timeoutMargin = 2 * time.Second

// Setup takes the machine-wide lock, repairs any state a killed run left
// (RecoverLeftover), snapshots the audit state, writes RecoveryFile, arms a
// SIGINT/SIGTERM/SIGHUP handler that restores and exits, and applies s. The
// original state is restored in t.Cleanup, which also runs after t.Fatal and
// after a panic in the test goroutine. It skips without root, when audit is
// immutable, and when the failure mode is 2 (a lost record would panic).
func Setup(t testing.TB, s Settings) *Kernel {
	t.Helper()
	RequireRoot(t)
	if s.Enabled > 1 {
		t.Fatalf("kerneltest: Settings.Enabled=%d: only 0 and 1 are allowed (2 cannot be undone before reboot)", s.Enabled)
	}
	f := lockForTest(t)
	orig, err := ReadStatus()
	if err != nil {
		t.Fatalf("kerneltest: snapshot: %v", err)
	}
	if orig.Enabled == 2 {
		t.Skip("kerneltest: audit is immutable (enabled=2) until reboot; nothing can be changed or restored")
	}
	if orig.Failure == 2 {
		t.Skip("kerneltest: audit failure mode is 2 (panic): a lost record would panic this machine; refusing to touch the kernel")
	}
	k := &Kernel{
		t:    t,
		lock: f,
		state: recoveryState{
			OwnerPID: os.Getpid(),
			Started:  time.Now(),
			Original: snapshotOf(orig),
		},
		cmds: map[*exec.Cmd]struct{}{},
	}
	if err := writeRecovery(&k.state); err != nil {
		t.Fatalf("kerneltest: %v", err)
	}
	k.armSignals()
	t.Cleanup(k.cleanup)
	k.Set(s)
	return k
}

// armSignals restores and exits on SIGINT, SIGTERM or SIGHUP while the setup
// is active: go test's interrupt, CI's kill and a closed terminal would
// otherwise leave the kernel changed. It also restores shortly before go
// test's -timeout, which panics from a timer goroutine where no cleanup runs
// (the test is hung by then anyway).
func (k *Kernel) armSignals() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	timer := time.NewTimer(time.Duration(math.MaxInt64))
	if d, ok := k.t.(interface{ Deadline() (time.Time, bool) }); ok {
		if at, ok := d.Deadline(); ok {
			timer.Reset(time.Until(at) - timeoutMargin)
		}
	}
	k.stopSig = make(chan struct{})
	go func(stop chan struct{}) {
		defer signal.Stop(ch)
		defer timer.Stop()
		select {
		case <-stop:
		case <-timer.C:
			errs := k.restore()
			for _, err := range errs {
				fmt.Fprintf(os.Stderr, "kerneltest: restore before the test binary's -timeout: %v\n", err)
			}
			if len(errs) == 0 {
				fmt.Fprintln(os.Stderr, "kerneltest: kernel audit state restored: the test binary's -timeout is about to end it")
			}
		case sig := <-ch:
			errs := k.restore()
			for _, err := range errs {
				fmt.Fprintf(os.Stderr, "kerneltest: restore after %v: %v\n", sig, err)
			}
			if len(errs) == 0 {
				fmt.Fprintf(os.Stderr, "kerneltest: %v: kernel audit state restored\n", sig)
			}
			releaseLock(k.lock)
			code := 1
			if s, ok := sig.(syscall.Signal); ok {
				code = 128 + int(s)
			}
			os.Exit(code)
		}
	}(k.stopSig)
}

func (k *Kernel) cleanup() {
	for _, err := range k.restore() {
		k.t.Errorf("kerneltest: %v", err)
	}
	close(k.stopSig)
}

// restore runs once; later calls (cleanup after a signal started it, or the
// other way round) wait for it and return nothing.
func (k *Kernel) restore() []error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.restored {
		return nil
	}
	k.restored = true
	// Stop the load first: it is what fills the backlog. An audited task
	// held by the backlog wait dies when the kernel wakes it.
	for cmd := range k.cmds {
		_ = cmd.Process.Kill()
	}
	if k.daemonStop != nil {
		k.daemonStop()
		k.daemonStop = nil
	}
	errs := restore(&k.state, k.daemon)
	k.daemon = nil
	if len(errs) == 0 {
		if err := os.Remove(RecoveryFile); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, fmt.Errorf("%s kept: run cmd/audit-restore or any Setup to retry", RecoveryFile))
	}
	for _, d := range k.dirs {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Set applies s. The wait time is zeroed first and set last, so no message
// of the sequence is held by the sender penalty except, possibly, the last.
func (k *Kernel) Set(s Settings) {
	k.t.Helper()
	if s.Enabled > 1 {
		k.t.Fatalf("kerneltest: Settings.Enabled=%d: only 0 and 1 are allowed", s.Enabled)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.restored {
		k.t.Fatalf("kerneltest: Set after restore")
	}
	c, err := dial(0)
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	defer c.close()
	steps := []struct {
		name  string
		mask  uint32
		value uint32
	}{
		{"backlog_wait_time", maskBacklogWaitTime, 0},
		{"rate_limit", maskRateLimit, s.RateLimit},
		{"backlog_limit", maskBacklogLimit, s.BacklogLimit},
		{"enabled", maskEnabled, s.Enabled},
		{"backlog_wait_time", maskBacklogWaitTime, s.BacklogWaitTime},
	}
	for _, st := range steps {
		if err := c.set(st.mask, st.value); err != nil {
			k.t.Fatalf("kerneltest: set %s=%d: %v", st.name, st.value, err)
		}
	}
	k.settings = s
}

// AddRule adds `-a always,exit -F arch=b64 -S openat,creat -F dir=<dir>
// -F key=<key>`; the restore deletes it (and only it). dir must exist.
func (k *Kernel) AddRule(dir, key string) {
	k.t.Helper()
	wire, err := rule.Build(&rule.SyscallRule{
		Type:   rule.AppendSyscallRuleType,
		List:   "exit",
		Action: "always",
		Filters: []rule.FilterSpec{
			{Type: rule.ValueFilterType, LHS: "arch", Comparator: "=", RHS: "b64"},
			{Type: rule.ValueFilterType, LHS: "dir", Comparator: "=", RHS: dir},
		},
		Syscalls: []string{"openat", "creat"},
		Keys:     []string{key},
	})
	if err != nil {
		k.t.Fatalf("kerneltest: build rule: %v", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.restored {
		k.t.Fatalf("kerneltest: AddRule after restore")
	}
	// Record first: a SIGKILL right after the add must still find it.
	k.state.Rules = append(k.state.Rules, addedRule{Key: key, Wire: wire})
	if err := writeRecovery(&k.state); err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	c, err := dial(0)
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	defer c.close()
	if err := c.do(requestTimeout, ackRequest(auditAddRule, wire)); err != nil {
		// Not ours to delete (EEXIST would be someone else's rule).
		k.state.Rules = k.state.Rules[:len(k.state.Rules)-1]
		_ = writeRecovery(&k.state)
		k.t.Fatalf("kerneltest: add rule dir=%s key=%s: %v", dir, key, err)
	}
}

// RegisterStalledDaemon registers a netlink socket of this process as the
// audit daemon and never reads it: kauditd's sends fill its receive buffer,
// and then the backlog. It skips when a real daemon is registered (the
// kernel refuses to replace a live one, and we would not anyway).
func (k *Kernel) RegisterStalledDaemon() {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.restored {
		k.t.Fatalf("kerneltest: RegisterStalledDaemon after restore")
	}
	if k.daemon != nil {
		return
	}
	if pid := k.state.Original.PID; pid != 0 {
		k.t.Skipf("kerneltest: an audit daemon (pid %d) is registered; not replacing it", pid)
	}
	c, err := dial(0)
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	// The kernel registers the socket the request came from; its ACK is
	// sent before the registration, so it is the last thing we read here.
	if err := c.set(maskPID, uint32(os.Getpid())); err != nil {
		c.close()
		k.t.Fatalf("kerneltest: register stalled daemon: %v", err)
	}
	k.daemon = c
}

// scratchDir makes a directory that outlives the restore (so the kernel
// does not drop a dir= rule under us) and is removed after it.
func (k *Kernel) scratchDir() string {
	k.t.Helper()
	d, err := os.MkdirTemp("", "auditplugin-kerneltest-")
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	k.mu.Lock()
	k.dirs = append(k.dirs, d)
	k.mu.Unlock()
	return d
}
