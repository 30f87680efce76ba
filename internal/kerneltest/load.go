package kerneltest

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// generateTimeout bounds one load generator. With backlog_wait_time > 0 an
// audited task sleeps up to that long per record while the backlog is full.
const generateTimeout = 2 * time.Minute

// generatorScript creates $1 files named f0.. in $2. Each `: >` is one
// openat(O_CREAT), matching the rule AddRule installs.
const generatorScript = `i=0; while [ "$i" -lt "$1" ]; do : > "$2/f$i"; i=$((i+1)); done`

// Generate starts a new process that creates n files in dir and waits for it.
// It must be a new process: the kernel audits only tasks forked after audit
// was first enabled. The restore kills a generator still running.
func (k *Kernel) Generate(n int, dir string) error {
	cmd, err := k.start("/bin/sh", "-c", generatorScript, "sh", strconv.Itoa(n), dir)
	if err != nil {
		return err
	}
	timer := time.AfterFunc(generateTimeout, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	if err := k.wait(cmd); err != nil {
		return fmt.Errorf("load generator (%d files in %s): %w", n, dir, err)
	}
	return nil
}

// start starts a command the restore kills if it still runs.
func (k *Kernel) start(name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = &bytes.Buffer{}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.restored {
		return nil, fmt.Errorf("kerneltest: load generator after restore")
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start load generator: %w", err)
	}
	k.cmds[cmd] = struct{}{}
	return cmd, nil
}

// wait waits for a command of start and forgets it.
func (k *Kernel) wait(cmd *exec.Cmd) error {
	err := cmd.Wait()
	k.mu.Lock()
	delete(k.cmds, cmd)
	k.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(cmd.Stderr.(*bytes.Buffer).Bytes()))
	}
	return nil
}

// OverflowResult describes one reproduction of the incident.
type OverflowResult struct {
	Dir, Key      string
	Files         int
	Before, After Status        // ReadStatus before the load and right after it ended
	PeakBacklog   uint32        // highest backlog sampled during the load
	Samples       int           // AUDIT_GET samples taken during the load
	FillTime      time.Duration // load start to the first sample >= 95% of backlog_limit; 0 if none
	LoadTime      time.Duration // how long the generator ran
}

// Overflow reproduces the incident: a narrow rule on a fresh scratch
// directory, a stalled daemon, and `files` files created there by a new
// process (3 x backlog_limit when files <= 0), while the backlog is sampled
// about every millisecond. The settings in force must have audit enabled
// and a backlog_limit (see OverflowSettings); with backlog_wait_time > 0 the
// generator sleeps instead of losing records, as the kernel intends.
func (k *Kernel) Overflow(files int) OverflowResult {
	k.t.Helper()
	k.mu.Lock()
	s := k.settings
	k.mu.Unlock()
	if s.Enabled != 1 || s.BacklogLimit == 0 {
		k.t.Fatalf("kerneltest: Overflow needs enabled=1 and a backlog_limit (have %+v); see OverflowSettings", s)
	}
	if files <= 0 {
		files = 3 * int(s.BacklogLimit)
	}
	before, err := ReadStatus()
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	if before.Failure == 2 {
		k.t.Fatalf("kerneltest: failure mode became 2 (panic) during the test; not losing records on purpose")
	}
	res := OverflowResult{Dir: k.scratchDir(), Files: files, Before: before}
	res.Key = fmt.Sprintf("auditplugin-kerneltest-%d-%d", k.state.OwnerPID, time.Now().UnixNano())
	k.AddRule(res.Dir, res.Key)
	k.RegisterStalledDaemon()

	c, err := dial(0)
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	defer c.close()
	threshold := s.BacklogLimit - s.BacklogLimit/20
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			st, err := c.status(nil)
			if err == nil {
				res.Samples++
				if st.Backlog > res.PeakBacklog {
					res.PeakBacklog = st.Backlog
				}
				if st.Backlog >= threshold && res.FillTime == 0 {
					res.FillTime = time.Since(start)
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	genErr := k.Generate(files, res.Dir)
	res.LoadTime = time.Since(start)
	// A few more samples: the last records of the load may still be queued.
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if genErr != nil {
		k.t.Fatalf("kerneltest: %v", genErr)
	}
	if res.After, err = ReadStatus(); err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	return res
}

// WaitBacklog polls the kernel until its backlog holds at least n records
// and returns that status; it fails t after timeout.
func WaitBacklog(t testing.TB, n uint32, timeout time.Duration) Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		if s.Backlog >= n {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog never filled: %v", s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
