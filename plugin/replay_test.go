//go:build replay

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"auditplugin/netlink"
)

func TestReplayLoops(t *testing.T) {
	c, err := readReplay(filepath.Join("testdata", "replay.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var backlogs []uint32
	var last netlink.Status
	for i := 0; i < 8; i++ {
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		backlogs = append(backlogs, st.Backlog)
		last = st
	}
	want := []uint32{10, 400, 900, 0, 10, 400, 900, 0}
	for i := range want {
		if backlogs[i] != want[i] {
			t.Fatalf("backlogs %v, want %v (the file in a loop)", backlogs, want)
		}
	}
	if last.Failure != netlink.FailurePanic || !last.Has(netlink.FieldBacklogWaitTimeActual) || last.BacklogWaitTime != 15000 {
		t.Errorf("last status %+v: fields not decoded", last)
	}
	if p := c.Penalty(); p.Held != 0 || c.Close() != nil {
		t.Errorf("penalty %+v", p)
	}
}

func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, path string
		want       []string
	}{
		{"missing", filepath.Join(dir, "none.jsonl"), []string{"open replay file", "none.jsonl"}},
		{"bad json", write("bad.jsonl", "{\"Backlog\": 1}\n\n{\"Backlog\": }\n"), []string{"bad.jsonl", "line 3"}},
		{"wrong type", write("type.jsonl", "{\"Backlog\": \"many\"}\n"), []string{"type.jsonl", "line 1"}},
		{"empty", write("empty.jsonl", "\n\n"), []string{"no statuses"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readReplay(tc.path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The whole plugin on a replay: the recorded panic-mode state reaches the charts.
func TestReplayRun(t *testing.T) {
	h := newHarness(nil)
	r, err := readReplay(filepath.Join("testdata", "replay.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	h.p.replayFrom(r)
	_, cancel := h.start(t)
	h.stdout.wait(t, 3, 5*time.Second)
	cancel()
	s := checkStream(t, h.stdout.String())
	if v := deref(s.series("linux_audit.failure_mode", "failure_panic")); len(v) == 0 || v[0] != 1 {
		t.Errorf("failure_panic %v, want 1", v)
	}
	if _, ok := s.charts["linux_audit.backlog_wait_stall"]; !ok {
		t.Error("replayed 44-byte statuses did not define the stall chart")
	}
	if v := deref(s.series("linux_audit.backlog", "backlog_peak")); len(v) == 0 || slices.Max(v) != 900 {
		t.Errorf("backlog peaks %v: want 900 (a cycle covers the whole 4-line loop)", v)
	}
}

// A bad replay file stops the plugin at startup, like a bad option: retried
// as a transient error it would leave Netdata without charts for good.
func TestReplayBadFileDisables(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.jsonl")
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"1", "-replay", missing}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if stdout.String() != "DISABLE\n" {
		t.Errorf("stdout %q, want DISABLE", stdout.String())
	}
	if e := stderr.String(); !strings.Contains(e, "open replay file") || !strings.Contains(e, missing) || strings.Count(e, "\n") != 1 {
		t.Errorf("stderr %q: want one line naming the replay file", e)
	}
}
