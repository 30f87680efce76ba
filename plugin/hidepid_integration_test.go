package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/testkit"
)

// hidepidNobody is a wrapper that runs a command as uid 65534 in a private
// mount namespace whose /proc is a new procfs mounted hidepid=2: there other
// users' processes (auditd, kernel threads) are invisible, as on hardened
// hosts. The host's /proc is untouched. Skips where unshare, mount or
// setpriv cannot do it.
func hidepidNobody(t *testing.T) []string {
	t.Helper()
	kerneltest.RequireRoot(t)
	for _, tool := range []string{"unshare", "setpriv", "setcap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	w := []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		"mount -t proc -o hidepid=2 proc /proc && exec " + strings.Join(testkit.AsNobody(), " ") + ` "$0" "$@"`}
	// The setup really hides a root process (this one) from the plugin's user.
	mine := fmt.Sprintf("/proc/%d", os.Getpid())
	out, err := exec.Command(w[0], append(w[1:], "sh", "-c", `test -e /proc/self/status && ! test -e "$0" && echo hidden`, mine)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hidden" {
		t.Skipf("cannot mount /proc hidepid=2 in a private mount namespace here: %v: %s", err, out)
	}
	return w
}

// TestIntegrationHidepid runs the plugin as nobody with /proc mounted
// hidepid=2. With the file capability, a registered audit daemon (a root
// process, invisible in /proc there) is charted as running; without it, the
// kernel's EPERM is explained as the missing capability, not blamed on the
// PID namespace (kernel threads are invisible there too).
func TestIntegrationHidepid(t *testing.T) {
	wrapper := hidepidNobody(t)
	exe := pluginBinary(t)

	t.Run("daemon running", func(t *testing.T) {
		capExe := capabilityCopy(t, exe)
		p := newPluginProc(t, "audit.plugin 1 as nobody, hidepid=2, cap_audit_control+ep", time.Second)
		orig, err := kerneltest.ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		// Audit stays as it is (normally disabled): only a daemon is registered.
		k := kerneltest.Setup(t, kerneltest.Settings{Enabled: orig.Enabled, BacklogLimit: orig.BacklogLimit,
			BacklogWaitTime: orig.BacklogWaitTime, RateLimit: orig.RateLimit})
		k.RegisterStalledDaemon()
		p.start(wrapper, capExe, "1")
		sts := cycleStatuses(t, p, 2)
		s := stopAndCheck(t, p, 10*time.Second)
		if len(s.charts) == 0 {
			t.Fatalf("no charts; stderr:\n%s", p.stderr)
		}
		for i, st := range sts {
			if st.PID != uint32(os.Getpid()) {
				t.Fatalf("cycle %d: kernel's daemon pid %d, want this test's %d", i+1, st.PID, os.Getpid())
			}
		}
		reg, run := values(s, chDaemon, "daemon_registered"), values(s, chDaemon, "daemon_running")
		for i := range sts {
			if reg[i] != 1 || run[i] != 1 {
				t.Errorf("cycle %d: daemon registered=%d running=%d, want 1 1 (pid %d exists, hidden by hidepid=2)", i+1, reg[i], run[i], os.Getpid())
			}
		}
	})

	t.Run("no capability", func(t *testing.T) {
		if !inInitialPIDNamespace() {
			t.Skip("not in the initial PID namespace: the namespace is then the right explanation")
		}
		stdout, stderr, err := runToExit(t, wrapper, exe, "1")
		if s := checkStream(t, stdout); err == nil || !s.disabled {
			t.Errorf("exit %v, stdout %q: want non-zero and DISABLE", err, stdout)
		}
		if !strings.Contains(stderr, "setcap cap_audit_control+ep") || strings.Contains(stderr, "namespace") {
			t.Errorf("stderr does not explain a missing capability (setcap), or blames a namespace:\n%s", stderr)
		}
	})
}
