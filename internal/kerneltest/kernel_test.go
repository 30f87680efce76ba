package kerneltest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"auditplugin/internal/testkit"
)

// Kernel tests: root only (they skip otherwise), one at a time machine-wide.
// Run with: go test -race -count=1 ./internal/kerneltest/

// lockedStatus reads the state under the lock, so it never sees another
// test's settings half-way.
func lockedStatus(t *testing.T) Status {
	t.Helper()
	f, err := acquireLock(lockWait, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseLock(f)
	if err := recoverLeftoverLocked(); err != nil {
		t.Fatal(err)
	}
	s, err := ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sameSettings reports every restorable field that differs.
func sameSettings(t *testing.T, what string, got, want Status) {
	t.Helper()
	g, w := snapshotOf(got), snapshotOf(want)
	if g != w {
		t.Errorf("%s: audit state is %+v, want %+v", what, g, w)
	}
}

func noRecoveryFile(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(RecoveryFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists (err %v)", RecoveryFile, err)
	}
}

func TestIntegrationReadStatusMatchesTool(t *testing.T) {
	RequireRoot(t)
	tool := testkit.RequireShared(t, "tools/audit-status.py")
	Lock(t)
	out, err := exec.Command("python3", tool).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	s, err := ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, val, _ := strings.Cut(line, " ")
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			t.Fatalf("tool line %q", line)
		}
		want[name] = n
	}
	got := map[string]int64{
		"enabled": int64(s.Enabled), "failure": int64(s.Failure), "pid": int64(s.PID),
		"rate_limit": int64(s.RateLimit), "backlog_limit": int64(s.BacklogLimit),
		"feature_bitmap": int64(s.FeatureBitmap), "backlog_wait_time": int64(s.BacklogWaitTime),
		"reply_bytes": int64(s.ReplyBytes), "rules": int64(s.Rules),
	}
	for name, g := range got {
		if w, ok := want[name]; !ok || w != g {
			t.Errorf("%s: ReadStatus %d, audit-status.py %d (present %v)", name, g, w, ok)
		}
	}
	t.Logf("ReadStatus: %v", s)
}

func TestIntegrationSetupAppliesAndRestores(t *testing.T) {
	RequireRoot(t)
	before := lockedStatus(t)
	want := Settings{Enabled: 1, BacklogLimit: 321, BacklogWaitTime: 77, RateLimit: 5}
	t.Run("setup", func(t *testing.T) {
		k := Setup(t, want)
		s, err := ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		if s.Enabled != 1 || s.BacklogLimit != 321 || s.BacklogWaitTime != 77 || s.RateLimit != 5 {
			t.Errorf("settings not applied: %v", s)
		}
		if _, err := os.Stat(RecoveryFile); err != nil {
			t.Errorf("recovery file: %v", err)
		}
		if _, ok, _ := tryLock(); ok {
			t.Error("lock is free during a setup")
		}
		dir := k.scratchDir()
		k.AddRule(dir, "auditplugin-kerneltest-setup")
		k.RegisterStalledDaemon()
		if s, err = ReadStatus(); err != nil {
			t.Fatal(err)
		}
		if s.Rules != before.Rules+1 || s.PID != uint32(os.Getpid()) {
			t.Errorf("rule or daemon missing: %v", s)
		}
		k.Set(Settings{Enabled: 0, BacklogLimit: 100, BacklogWaitTime: 0, RateLimit: 0})
		if s, err = ReadStatus(); err != nil {
			t.Fatal(err)
		}
		if s.Enabled != 0 || s.BacklogLimit != 100 || s.BacklogWaitTime != 0 {
			t.Errorf("Set not applied: %v", s)
		}
	})
	sameSettings(t, "after cleanup", lockedStatus(t), before)
	noRecoveryFile(t)
}

// TestIntegrationRestoreAfterFatal checks the restore runs when the test
// body stops with t.Fatal (FailNow): a child test fails on purpose, so it
// runs in a child process whose failure is the expected outcome.
func TestIntegrationRestoreAfterFatalAndPanic(t *testing.T) {
	RequireRoot(t)
	for _, mode := range []string{"fatal", "panic"} {
		t.Run(mode, func(t *testing.T) {
			before := lockedStatus(t)
			cmd, ready, out := startChild(t, mode)
			readReady(t, ready)
			err := cmd.Wait()
			if err == nil {
				t.Errorf("child passed; it should have failed:\n%s", out)
			}
			sameSettings(t, "after child "+mode, lockedStatus(t), before)
			noRecoveryFile(t)
			if t.Failed() {
				t.Logf("child output:\n%s", out)
			}
		})
	}
}

func TestIntegrationOverflow(t *testing.T) {
	RequireRoot(t)
	before := lockedStatus(t)
	t.Run("overflow", func(t *testing.T) {
		k := Setup(t, OverflowSettings())
		limit := OverflowSettings().BacklogLimit

		// Sample with the exported reader too, as a plugin test would.
		var peak, samples uint32
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for {
				if s, err := ReadStatus(); err == nil {
					samples++
					peak = max(peak, s.Backlog)
				}
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		}()
		res := k.Overflow(0)
		close(stop)
		<-done

		t.Logf("files=%d load=%v fill(>=95%%)=%v peak=%d samples=%d lost %d -> %d (+%d)",
			res.Files, res.LoadTime.Round(time.Millisecond), res.FillTime.Round(time.Millisecond),
			res.PeakBacklog, res.Samples, res.Before.Lost, res.After.Lost, res.After.Lost-res.Before.Lost)
		t.Logf("ReadStatus sampler: peak=%d samples=%d", peak, samples)
		t.Logf("before: %v", res.Before)
		t.Logf("after:  %v", res.After)
		if res.PeakBacklog < limit-limit/20 {
			t.Errorf("Overflow's sampler: peak backlog %d never reached 95%% of %d", res.PeakBacklog, limit)
		}
		if peak < limit-limit/20 {
			t.Errorf("ReadStatus: peak backlog %d never reached 95%% of %d", peak, limit)
		}
		if res.After.Lost <= res.Before.Lost {
			t.Errorf("lost did not rise: %d -> %d", res.Before.Lost, res.After.Lost)
		}
		if res.After.PID != uint32(os.Getpid()) || res.After.Rules != res.Before.Rules+1 {
			t.Errorf("stalled daemon or rule missing: %v", res.After)
		}
		// How long the kernel takes to empty the backlog by itself.
		start := time.Now()
		for time.Since(start) < 5*time.Second {
			s, err := ReadStatus()
			if err != nil {
				t.Fatal(err)
			}
			if s.Backlog == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("backlog %d at the end of the load, 0 after another %v",
			res.After.Backlog, time.Since(start).Round(time.Millisecond))
	})
	after := lockedStatus(t)
	sameSettings(t, "after cleanup", after, before)
	if after.Rules != before.Rules {
		t.Errorf("rules %d, want %d", after.Rules, before.Rules)
	}
	noRecoveryFile(t)
}

// TestIntegrationGenerateProducesRecords counts the records of a load on
// the audit multicast group (a read-only copy of what kauditd sends).
func TestIntegrationGenerateProducesRecords(t *testing.T) {
	RequireRoot(t)
	k := Setup(t, Settings{Enabled: 1, BacklogLimit: 8192})
	dir := k.scratchDir()
	key := fmt.Sprintf("auditplugin-kerneltest-gen-%d", os.Getpid())
	k.AddRule(dir, key)

	c, err := dial(1) // AUDIT_NLGRP_READLOG
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var mu sync.Mutex
	count := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		needle := []byte(`key="` + key + `"`)
		for {
			select {
			case <-stop:
				return
			default:
			}
			msgs, err := c.recv(buf)
			if err != nil {
				t.Errorf("multicast receive: %v", err)
				return
			}
			for _, m := range msgs {
				if m.typ == 1300 && bytes.Contains(m.data, needle) { // AUDIT_SYSCALL
					mu.Lock()
					count++
					mu.Unlock()
				}
			}
		}
	}()
	const n = 200
	start := time.Now()
	if err := k.Generate(n, dir); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := count
		mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	<-done
	t.Logf("%d file creations in %v gave %d SYSCALL records with our key", n, elapsed, count)
	if count != n {
		t.Errorf("got %d SYSCALL records, want %d", count, n)
	}
}

// --- child processes: signals, SIGKILL, the lock ---

const helperEnv = "KERNELTEST_HELPER"

// childSettings differ from the boot defaults in every field we restore.
var childSettings = Settings{Enabled: 1, BacklogLimit: 4321, BacklogWaitTime: 123, RateLimit: 7}

// TestHelperKernelChild is not a test: the tests below re-execute the test
// binary to run it in a process of its own, selected by KERNELTEST_HELPER.
// It sets up, tells the parent on fd 3, then does what the mode says.
func TestHelperKernelChild(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for the signal, SIGKILL and lock tests")
	}
	var k *Kernel
	if mode == "overflow" {
		// Leave the kernel mid-incident: a full backlog, a stalled daemon,
		// and a limit far below the queue with a wait time, so every
		// sender is penalised when the parent kills us.
		k = Setup(t, OverflowSettings())
		k.Overflow(0)
		k.Set(Settings{Enabled: 1, BacklogLimit: 100, BacklogWaitTime: 250})
		mode = "wait"
	} else {
		k = Setup(t, childSettings)
		k.AddRule(k.scratchDir(), "auditplugin-kerneltest-child")
		k.RegisterStalledDaemon()
	}
	ready := os.NewFile(3, "ready")
	fmt.Fprintln(ready, "ready")
	ready.Close()
	switch mode {
	case "hold":
		time.Sleep(1500 * time.Millisecond)
	case "fatal":
		t.Fatal("failing on purpose: the restore must still run")
	case "panic":
		panic("panicking on purpose: the restore must still run")
	default: // "wait": until the parent's signal
		time.Sleep(time.Minute)
		t.Error("no signal came")
	}
}

// startChild runs TestHelperKernelChild in mode; ready yields its line once
// it has set up.
func startChild(t *testing.T, mode string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	timeout := "2m"
	if mode == "timeout" {
		timeout, mode = "4s", "wait"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperKernelChild$", "-test.v", "-test.timeout="+timeout)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.ExtraFiles = []*os.File{w}
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		r.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(r), out
}

func readReady(t *testing.T, ready *bufio.Reader) {
	t.Helper()
	line, err := ready.ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child did not get ready: %q %v", line, err)
	}
}

// childInForce checks the child's settings, rule and daemon are in force.
func childInForce(t *testing.T, before Status, pid int) {
	t.Helper()
	s, err := ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if s.Enabled != childSettings.Enabled || s.BacklogLimit != childSettings.BacklogLimit ||
		s.BacklogWaitTime != childSettings.BacklogWaitTime || s.RateLimit != childSettings.RateLimit ||
		s.Rules != before.Rules+1 || s.PID != uint32(pid) {
		t.Fatalf("child's setup not in force: %v", s)
	}
}

func TestIntegrationRestoreOnSignal(t *testing.T) {
	RequireRoot(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			before := lockedStatus(t)
			cmd, ready, out := startChild(t, "wait")
			readReady(t, ready)
			childInForce(t, before, cmd.Process.Pid)
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			t.Logf("child exited %v after the signal: %v", time.Since(start).Round(time.Millisecond), err)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 128+int(sig) {
				t.Errorf("child exit: %v, want status %d", err, 128+int(sig))
			}
			if !strings.Contains(out.String(), "kernel audit state restored") {
				t.Errorf("child did not report a restore:\n%s", out)
			}
			sameSettings(t, "after "+unix.SignalName(sig), lockedStatus(t), before)
			noRecoveryFile(t)
		})
	}
}

// TestIntegrationRestoreBeforeTestTimeout: go test -timeout panics in a
// timer goroutine, where no cleanup runs; Setup restores just before it.
func TestIntegrationRestoreBeforeTestTimeout(t *testing.T) {
	RequireRoot(t)
	before := lockedStatus(t)
	cmd, ready, out := startChild(t, "timeout")
	readReady(t, ready)
	childInForce(t, before, cmd.Process.Pid)
	err := cmd.Wait()
	if err == nil || !strings.Contains(out.String(), "test timed out") {
		t.Errorf("child did not time out: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), "kernel audit state restored") {
		t.Errorf("child did not report a restore:\n%s", out)
	}
	sameSettings(t, "after the child's timeout", lockedStatus(t), before)
	noRecoveryFile(t)
}

func TestIntegrationRecoveryAfterSIGKILL(t *testing.T) {
	RequireRoot(t)
	killChild := func(t *testing.T, before Status) int {
		cmd, ready, _ := startChild(t, "wait")
		readReady(t, ready)
		childInForce(t, before, cmd.Process.Pid)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return cmd.Process.Pid
	}
	t.Run("RecoverLeftover", func(t *testing.T) {
		before := lockedStatus(t)
		pid := killChild(t, before)
		// Hold the lock while looking, so no other run repairs it first.
		f, err := acquireLock(lockWait, t.Logf)
		if err != nil {
			t.Fatal(err)
		}
		st, err := readRecovery()
		if err != nil {
			releaseLock(f)
			t.Fatalf("recovery file after SIGKILL: %v", err)
		}
		s, _ := ReadStatus()
		releaseLock(f)
		t.Logf("left by the killed child: %v", s)
		if st.OwnerPID != pid || len(st.Rules) != 1 || st.Original != snapshotOf(before) {
			t.Errorf("recovery file: %+v", st)
		}
		if s.BacklogLimit != childSettings.BacklogLimit || s.Enabled != 1 {
			t.Errorf("the kill left nothing to repair: %v", s)
		}
		if err := RecoverLeftover(); err != nil {
			t.Fatal(err)
		}
		sameSettings(t, "after RecoverLeftover", lockedStatus(t), before)
		noRecoveryFile(t)
	})
	t.Run("mid-overflow under the sender penalty", func(t *testing.T) {
		before := lockedStatus(t)
		cmd, ready, out := startChild(t, "overflow")
		readReady(t, ready)
		s, err := ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("child left: %v", s)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if s.PID != uint32(cmd.Process.Pid) || s.BacklogLimit != 100 {
			t.Fatalf("child not mid-overflow: %v\n%s", s, out)
		}
		start := time.Now()
		if err := RecoverLeftover(); err != nil {
			t.Fatal(err)
		}
		t.Logf("RecoverLeftover took %v", time.Since(start).Round(time.Millisecond))
		sameSettings(t, "after RecoverLeftover", lockedStatus(t), before)
		noRecoveryFile(t)
	})
	t.Run("next Setup recovers first", func(t *testing.T) {
		before := lockedStatus(t)
		killChild(t, before)
		k := Setup(t, Settings{Enabled: 0, BacklogLimit: before.BacklogLimit, BacklogWaitTime: before.BacklogWaitTime})
		if k.state.Original != snapshotOf(before) {
			t.Errorf("Setup snapshot %+v, want the state before the killed run %+v", k.state.Original, snapshotOf(before))
		}
	})
	t.Run("audit-restore command", func(t *testing.T) {
		before := lockedStatus(t)
		killChild(t, before)
		goTool, err := exec.LookPath("go")
		if err != nil {
			t.Skip("no go tool to build cmd/audit-restore")
		}
		out, err := exec.Command(goTool, "run", "auditplugin/cmd/audit-restore").CombinedOutput()
		t.Logf("audit-restore: %s", bytes.TrimSpace(out))
		if err != nil {
			t.Fatal(err)
		}
		sameSettings(t, "after audit-restore", lockedStatus(t), before)
		noRecoveryFile(t)
	})
}

func TestIntegrationLockExcludesOtherProcesses(t *testing.T) {
	RequireRoot(t)
	before := lockedStatus(t)
	cmd, ready, _ := startChild(t, "hold")
	exited := make(chan error, 1)
	readReady(t, ready)
	go func() { exited <- cmd.Wait() }()
	if f, ok, err := tryLock(); err != nil || ok {
		releaseLock(f)
		t.Fatalf("took the lock while the child holds it (ok=%v err=%v)", ok, err)
	}
	start := time.Now()
	Lock(t) // waits for the child's cleanup
	waited := time.Since(start)
	s, err := ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("waited %v for the child's lock", waited.Round(time.Millisecond))
	if waited < time.Second {
		t.Errorf("got the lock after %v, while the child holds it 1.5 s", waited)
	}
	// Once we hold the lock the child has restored everything.
	sameSettings(t, "when the lock was free again", s, before)
	noRecoveryFile(t)
	if err := <-exited; err != nil {
		t.Errorf("child: %v", err)
	}
}
