package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
)

// answerOf returns the body of the Function answer for txid in out, if any.
func answerOf(out, txid string) (code, body string, ok bool) {
	i := strings.Index(out, "FUNCTION_RESULT_BEGIN "+txid+" ")
	if i < 0 {
		return "", "", false
	}
	rest := out[i:]
	head, rest, _ := strings.Cut(rest, "\n")
	body, _, found := strings.Cut(rest, "\nFUNCTION_RESULT_END\n")
	if !found {
		return "", "", false
	}
	return strings.Fields(head)[2], body, true
}

// callReal writes one call to the plugin's stdin and waits for its answer;
// it returns the table's rows by field and how long the answer took.
func callReal(t *testing.T, p *pluginProc, txid string) (map[string]string, time.Duration) {
	t.Helper()
	start := time.Now()
	if _, err := io.WriteString(p.stdin, fmt.Sprintf("FUNCTION %s 10 \"audit-status\" \"0x1\" \"test\"\n", txid)); err != nil {
		t.Fatal(err)
	}
	for {
		if code, body, ok := answerOf(p.output(), txid); ok {
			took := time.Since(start)
			if code != "200" {
				t.Fatalf("%s answered %s: %s", txid, code, body)
			}
			var tb struct {
				Data [][]any `json:"data"`
			}
			if err := json.Unmarshal([]byte(body), &tb); err != nil {
				t.Fatalf("%s: %v\n%s", txid, err, body)
			}
			rows := map[string]string{}
			for _, r := range tb.Data {
				f, _ := r[0].(string)
				v, _ := r[1].(string)
				rows[f] = v
			}
			return rows, took
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("no answer to %s after 5 s; stderr:\n%s", txid, p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIntegrationFunctionDuringStall calls the status Function of the real
// binary on the real kernel, first with a rule added (counted), then while
// the kernel holds every audit sender asleep (backlog over its limit,
// backlog_wait_time 5 s): each answer still comes at once, the rule count
// is unavailable or fresh, and the one-second chart cycles stay on time.
func TestIntegrationFunctionDuringStall(t *testing.T) {
	const (
		limit       = 200
		waitJiffies = 1250 // 5 s at HZ 250
		maxGap      = 2 * time.Second
		maxAnswer   = 1500 * time.Millisecond // the 1 s rule-listing bound, and slack
	)
	kerneltest.RequireRoot(t)
	exe := pluginBinary(t)
	dir := t.TempDir()
	var load sync.WaitGroup
	t.Cleanup(load.Wait)
	p := newPluginProc(t, "audit.plugin 1", time.Second)
	k := kerneltest.Setup(t, kerneltest.Settings{Enabled: 1, BacklogLimit: limit, BacklogWaitTime: waitJiffies})
	stop := make(chan struct{})
	t.Cleanup(func() {
		// End the stall before the restore, as TestIntegrationStall does.
		close(stop)
		k.Set(kerneltest.Settings{Enabled: 1, BacklogLimit: limit})
	})
	k.AddRule(dir, fmt.Sprintf("auditplugin-function-%d", os.Getpid()))
	before, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	k.RegisterStalledDaemon()
	p.start(nil, exe, "1")
	p.waitCycles(2, 5*time.Second)

	rows, took := callReal(t, p, "calm")
	t.Logf("calm: answered in %v, rules %s, backlog %s", took.Round(time.Millisecond), rows["rules"], rows["backlog"])
	if rows["rules"] != fmt.Sprint(before.Rules) || !strings.HasPrefix(rows["backlog_limit"], fmt.Sprint(limit)) ||
		rows["enabled"] != "1 (enabled)" || rows["pid"] != fmt.Sprint(os.Getpid()) || rows["daemon_alive"] != "yes" {
		t.Errorf("calm table %v; kernel %v, daemon pid %d", rows, before, os.Getpid())
	}

	// Load: a new audited process every 100 ms keeps the backlog over its limit.
	generateEvery(&load, stop, 100*time.Millisecond, k, 2*limit, dir)
	held := false
	for deadline := time.Now().Add(20 * time.Second); !held; {
		if time.Now().After(deadline) {
			st, _ := kerneltest.ReadStatus()
			t.Fatalf("no query held 20 s into the load (kernel %v)", st)
		}
		p.waitCycles(p.cycles()+1, 5*time.Second)
		s, _ := validateStream(p.completeOutput())
		for _, v := range values(s, chHeld, "queries_held") {
			held = held || v > 0
		}
	}
	stallStart := time.Now()
	unavailable := 0
	for i := range 4 {
		rows, took := callReal(t, p, fmt.Sprintf("stall-%d", i))
		t.Logf("stall-%d: answered in %v, rules %s, backlog %s, sampled %s", i, took.Round(time.Millisecond), rows["rules"], rows["backlog"], rows["sampled_at"])
		if took > maxAnswer {
			t.Errorf("stall-%d answered after %v, want within %v", i, took, maxAnswer)
		}
		switch rows["rules"] {
		case "unavailable (kernel holding queries)":
			unavailable++
		case fmt.Sprint(before.Rules):
		default:
			t.Errorf("stall-%d: rules %q", i, rows["rules"])
		}
		time.Sleep(500 * time.Millisecond)
	}
	if unavailable == 0 {
		t.Logf("every listing was answered during the stall (the kernel queues the replies before it holds the sender)")
	}
	p.waitCycles(p.cycles()+2, 5*time.Second)
	var during []time.Time
	for _, a := range p.arrivalTimes() {
		if a.After(stallStart.Add(-time.Second)) {
			during = append(during, a)
		}
	}
	g := gaps(during)
	t.Logf("cycle gaps during the calls (s): %s", durationsString(g))
	if m := maxDuration(g); m > maxGap {
		t.Errorf("a chart cycle came %v after the previous one during the calls, want within %v", m, maxGap)
	}
	checkStream(t, p.completeOutput())
}
