package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestShippedBinaryRejectsReplay builds the plugin with `make build`, as it
// is shipped, and checks that it has no test-only code reachable from the
// command line: -replay (which reads any file named) is an unknown flag,
// reported in one line with DISABLE, and the named file is never opened.
func TestShippedBinaryRejectsReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin with make")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed")
	}
	bin := filepath.Join(t.TempDir(), "audit.plugin")
	build := exec.Command("make", "-s", "-C", "..", "build", "BINARY="+bin)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	// A replay file that would chart if it were read.
	replay := filepath.Join(t.TempDir(), "status.jsonl")
	if err := os.WriteFile(replay, []byte(`{"Enabled":1,"BacklogLimit":64,"ReplyBytes":32}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	// A binary that accepted -replay would chart from the file until killed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "1", "-replay", replay)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if ctx.Err() != nil {
		t.Fatalf("still running after 10 s: -replay was accepted; stdout:\n%.500s", stdout.String())
	}
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit %v, want exit status 1", err)
	}
	if stdout.String() != "DISABLE\n" {
		t.Errorf("stdout %q, want only DISABLE", stdout.String())
	}
	if e := stderr.String(); strings.Count(e, "\n") != 1 || !strings.Contains(e, "flag provided but not defined: -replay") {
		t.Errorf("stderr %q, want one line saying -replay is not defined", e)
	}
}
