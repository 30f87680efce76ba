package netlink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/testkit"
)

// The integration tests only read the kernel (AUDIT_GET); they never change
// an audit setting. Tests that do belong to package kerneltest.

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: AUDIT_GET requires CAP_AUDIT_CONTROL in the initial user namespace")
	}
}

// lockKernel takes the machine-wide kernel test lock for the rest of t. A
// read needs it too: while kerneltest's tests hold the backlog over its
// limit, every AUDIT_GET sender is put to sleep, and settings change.
func lockKernel(t *testing.T) {
	t.Helper()
	needRoot(t)
	kerneltest.Lock(t)
}

// openReal opens the real socket, skipping where the kernel cannot answer
// at all (no audit, or a container's namespaces).
func openReal(t *testing.T) *Client {
	t.Helper()
	c, err := Open(nil)
	if errors.Is(err, ErrNoAudit) || errors.Is(err, ErrNamespace) {
		t.Skipf("the kernel cannot answer here: %v", err)
	}
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func realStatus(t *testing.T, c *Client) Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.Status(ctx)
	if errors.Is(err, ErrNamespace) {
		t.Skipf("the kernel refuses this process's namespace: %v", err)
	}
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return s
}

// auditStatusTool runs the project's reference reader and returns what it printed.
func auditStatusTool(t *testing.T) map[string]uint64 {
	t.Helper()
	tool := testkit.RequireShared(t, "tools/audit-status.py")
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("python3 is needed to run %s: %v", tool, err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(python, tool)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", tool, err, stderr.String())
	}
	vals := make(map[string]uint64)
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		name, v, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			t.Fatalf("%s printed %q", tool, sc.Text())
		}
		vals[name] = n
	}
	return vals
}

// settings are the fields that change only when someone changes the audit
// configuration.
func settings(s Status) [8]uint64 {
	return [8]uint64{uint64(s.Enabled), uint64(s.Failure), uint64(s.PID), uint64(s.RateLimit),
		uint64(s.BacklogLimit), uint64(s.BacklogWaitTime), uint64(s.FeatureBitmap), uint64(s.ReplyBytes)}
}

var settingNames = [8]string{"enabled", "failure", "pid", "rate_limit", "backlog_limit", "backlog_wait_time", "feature_bitmap", "reply_bytes"}

// TestIntegrationStatusMatchesTool compares our reading with the reference
// reader audit-status.py (an independent AUDIT_GET reader in Python, kept in
// ../shared/tools beside the repository: without it the test skips saying
// so, under CI=true it fails), taken between two of ours: settings must be
// equal, and the cumulative counters must lie between our two readings. If
// the settings changed meanwhile (a tool outside the lock), it tries again.
func TestIntegrationStatusMatchesTool(t *testing.T) {
	lockKernel(t)
	c := openReal(t)
	for attempt := 1; ; attempt++ {
		before := realStatus(t, c)
		tool := auditStatusTool(t)
		after := realStatus(t, c)
		if settings(before) != settings(after) || after.Lost < before.Lost ||
			after.BacklogWaitTimeActual < before.BacklogWaitTimeActual {
			if attempt == 5 {
				t.Fatalf("the audit configuration kept changing: %+v, then %+v", before, after)
			}
			t.Logf("audit configuration changed during attempt %d; retrying", attempt)
			continue
		}
		for i, name := range settingNames {
			got, ok := tool[name]
			if !ok || got != settings(before)[i] {
				t.Errorf("%s: ours %d, audit-status.py %d (printed: %v)", name, settings(before)[i], got, ok)
			}
		}
		counters := []struct {
			name          string
			before, after uint32
			sent          bool
		}{
			{"lost", before.Lost, after.Lost, true},
			{"backlog_wait_time_actual", before.BacklogWaitTimeActual, after.BacklogWaitTimeActual, before.Has(FieldBacklogWaitTimeActual)},
		}
		for _, ctr := range counters {
			got, ok := tool[ctr.name]
			if ok != ctr.sent {
				t.Errorf("%s: audit-status.py printed it: %v, our reply has it: %v", ctr.name, ok, ctr.sent)
				continue
			}
			if ok && (got < uint64(ctr.before) || got > uint64(ctr.after)) {
				t.Errorf("%s: audit-status.py read %d, not between our readings %d and %d", ctr.name, got, ctr.before, ctr.after)
			}
		}
		t.Logf("status: %+v", before)
		return
	}
}

// TestIntegrationStatusConcurrent runs many queries at once on the real
// socket: the receiver must match every reply to a query.
func TestIntegrationStatusConcurrent(t *testing.T) {
	lockKernel(t)
	c := openReal(t)
	first := realStatus(t, c)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				s, err := c.Status(ctx)
				cancel()
				if err != nil || s.ReplyBytes != first.ReplyBytes {
					t.Errorf("Status = %d-byte reply, %v; want %d bytes", s.ReplyBytes, err, first.ReplyBytes)
					return
				}
			}
		})
	}
	wg.Wait()
	testkit.PollUntil(t, "every send returns", 5*time.Second, func() bool { return inFlight(c) == 0 })
}

// TestIntegrationStatusUnprivileged runs this test binary's
// TestIntegrationHelper as an unprivileged user and from a user namespace,
// so the real kernel's refusals are checked end to end.
func TestIntegrationStatusUnprivileged(t *testing.T) {
	lockKernel(t)
	exe := copyTestBinary(t)
	tests := []struct {
		name string
		want string
		wrap []string
	}{
		{"no CAP_AUDIT_CONTROL", "permission", testkit.AsNobody()},
		{"user namespace", "namespace", []string{"unshare", "--user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := exec.LookPath(tt.wrap[0]); err != nil {
				t.Skipf("%s not installed", tt.wrap[0])
			}
			if out, err := exec.Command(tt.wrap[0], append(tt.wrap[1:], "true")...).CombinedOutput(); err != nil {
				t.Skipf("%s does not work here: %v: %s", tt.wrap[0], err, out)
			}
			args := append(tt.wrap[1:], exe, "-test.run=^TestIntegrationHelper$", "-test.v", "-test.count=1")
			cmd := exec.Command(tt.wrap[0], args...)
			cmd.Dir = filepath.Dir(exe)
			cmd.Env = append(os.Environ(), "AUDITPLUGIN_HELPER_WANT="+tt.want)
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("--- PASS: TestIntegrationHelper")) {
				t.Errorf("helper as %v: %v\n%s", tt.wrap, err, out)
			}
		})
	}
}

// copyTestBinary puts a copy of this test binary where other users can run it.
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	return testkit.CopyForOthers(t, self, "netlink.test")
}

// TestIntegrationHelper is run by TestIntegrationStatusUnprivileged.
func TestIntegrationHelper(t *testing.T) {
	want := os.Getenv("AUDITPLUGIN_HELPER_WANT")
	if want == "" {
		t.Skip("run by TestIntegrationStatusUnprivileged as another user")
	}
	c, err := Open(nil)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = c.Status(ctx)
		cancel()
		c.Close()
	}
	wantErrs := map[string][]error{
		"permission": {ErrPermission, syscall.EPERM},
		"namespace":  {ErrNamespace, syscall.ECONNREFUSED},
	}[want]
	for _, w := range wantErrs {
		if !errors.Is(err, w) {
			t.Errorf("Status as uid %d = %v, want %v in the chain", os.Getuid(), err, w)
		}
	}
	if !IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = false", err)
	}
	t.Logf("uid %d: %v", os.Getuid(), err)
}
