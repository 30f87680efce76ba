package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
)

// processGone reports whether pid has exited (gone, or a zombie nobody reaped).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

// TestIntegrationExitsWhenParentKilled starts the real plugin at update_every
// 60 from a shell standing in for Netdata, kills that shell with SIGKILL once
// the charts are out, and wants the plugin gone within 2 s, long before its
// next update. stdout goes to a file and stdin is /dev/null, so no broken
// pipe or QUIT can end it: only noticing its parent's death.
func TestIntegrationExitsWhenParentKilled(t *testing.T) {
	kerneltest.RequireRoot(t)
	exe := pluginBinary(t)
	out := filepath.Join(t.TempDir(), "plugin.out")
	parent := exec.Command("sh", "-c", `"$0" 60 >"$1" 2>&1 </dev/null & echo $!; wait`, exe, out)
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer parent.Wait()
	defer parent.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("plugin pid from the parent shell: %q, %v, %v", line, err, perr)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)

	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if strings.Contains(string(b), "\nDIMENSION ") {
			break
		}
		if processGone(pid) || time.Now().After(deadline) {
			t.Fatalf("no charts from the plugin (pid %d) within 10 s; output:\n%s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for !processGone(pid) {
		if time.Since(killed) > 2*time.Second {
			b, _ := os.ReadFile(out)
			t.Fatalf("plugin (pid %d) still running 2 s after its parent was killed; output:\n%s", pid, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("plugin exited %v after its parent was killed", time.Since(killed).Round(time.Millisecond))
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "parent process) is gone") {
		t.Errorf("the plugin did not say why it exited; output:\n%s", b)
	}
}
