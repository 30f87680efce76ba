package e2e

import (
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
)

// The status Function, PLUGIN_KEEPALIVE and QUIT on real agents: Netdata
// 2.11 (from ../shared/netdata-2.11, installed into /opt/netdata2 when
// missing) and Debian's 1.37.

// startND2 runs a Netdata 2.11 with the plugins of dir (as user netdata)
// and extra netdata.conf text; t.Cleanup stops it.
func startND2(t *testing.T, dir, extraConf string) *netdatatest.Lab2 {
	t.Helper()
	netdatatest.Agent2.Require(t) // installs 2.11 from ../shared when missing
	if err := netdatatest.OpenForOthers(dir); err != nil {
		t.Fatal(err)
	}
	return netdatatest.StartLab2(t, dir, extraConf)
}

// pluginPIDs returns the processes running the executable at path.
func pluginPIDs(path string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == path {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitPluginPID(t *testing.T, path string, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p := pluginPIDs(path); len(p) == 1 {
			return p[0]
		}
		time.Sleep(netdatatest.PollInterval)
	}
	t.Fatalf("no single %s process after %v: %v", path, timeout, pluginPIDs(path))
	return 0
}

// statusTable is the audit-status answer, by field.
type statusTable struct {
	Status     int                       `json:"status"`
	Type       string                    `json:"type"`
	HasHistory bool                      `json:"has_history"`
	Columns    map[string]map[string]any `json:"columns"`
	Data       [][]any                   `json:"data"`
	values     map[string]string
}

// callStatus calls the Function through the agent's API (path: /api/v1/function
// on 1.37 and 2.x, /api/v3/function on 2.x) and returns the table.
func callStatus(t *testing.T, base, path string) (statusTable, int, string) {
	t.Helper()
	q := url.Values{"function": {"audit-status"}, "timeout": {"10"}}
	resp, err := http.Get(base + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tb statusTable
	if resp.StatusCode != http.StatusOK {
		return tb, resp.StatusCode, string(body)
	}
	if err := json.Unmarshal(body, &tb); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", path, err, body)
	}
	tb.values = map[string]string{}
	for _, row := range tb.Data {
		if len(row) >= 2 {
			f, _ := row[0].(string)
			v, _ := row[1].(string)
			tb.values[f] = v
		}
	}
	return tb, resp.StatusCode, string(body)
}

// checkKernelValues compares the table with the kernel's state as
// kerneltest's own reader sees it, while the kernel lock keeps it steady.
func checkKernelValues(t *testing.T, tb statusTable, st kerneltest.Status) {
	t.Helper()
	if tb.Status != 200 || tb.Type != "table" || tb.HasHistory || len(tb.Columns) < 3 {
		t.Errorf("table header: status %d type %q has_history %v %d columns", tb.Status, tb.Type, tb.HasHistory, len(tb.Columns))
	}
	want := map[string]string{
		"enabled":       strconv.Itoa(int(st.Enabled)) + " (",
		"failure":       strconv.Itoa(int(st.Failure)) + " (",
		"backlog_limit": strconv.Itoa(int(st.BacklogLimit)),
		"rules":         strconv.Itoa(st.Rules),
		"reply_bytes":   strconv.Itoa(st.ReplyBytes),
		"lost":          strconv.Itoa(int(st.Lost)),
	}
	if st.BacklogLimit == 0 {
		want["backlog_limit"] = "0 (unlimited)"
	}
	if st.ReplyBytes >= 40 {
		want["backlog_wait_time"] = strconv.Itoa(int(st.BacklogWaitTime)) + " jiffies"
	}
	for f, w := range want {
		if v := tb.values[f]; !strings.HasPrefix(v, w) {
			t.Errorf("%s = %q, want %q… (kernel: %v)", f, v, w, st)
		}
	}
	for _, f := range []string{"pid", "daemon_alive", "peak_backlog", "last_lost", "sampled_at"} {
		if tb.values[f] == "" {
			t.Errorf("no %s row", f)
		}
	}
}

// TestIntegrationND2StatusFunction calls the Function through a real Netdata
// 2.11's API, with one rule added to the real kernel, and checks the table
// against the kernel; the charts keep coming meanwhile.
func TestIntegrationND2StatusFunction(t *testing.T) {
	netdatatest.RequireNetdata(t)
	kerneltest.RequireRoot(t)
	dir := pluginDir(t, "cap_audit_control+ep")
	ruleDir, err := os.MkdirTemp("", "auditplugin-fn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ruleDir) }) // after the restore deletes the rule
	k := kerneltest.Setup(t, kerneltest.Settings{BacklogLimit: 64, BacklogWaitTime: 15000})
	k.AddRule(ruleDir, "auditplugin-function-test")
	st, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	n := startND2(t, dir, "")
	bin := filepath.Join(dir, "audit.plugin")
	pid := waitPluginPID(t, bin, 30*time.Second)

	// Registered for 2.x's function list, with our help text and public access.
	var list struct {
		Functions map[string]struct {
			Help    string `json:"help"`
			Timeout int    `json:"timeout"`
			Tags    string `json:"tags"`
		} `json:"functions"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		list.Functions = nil
		if err := netdatatest.GetJSON(n.URL+"/api/v1/functions", &list); err == nil {
			if _, ok := list.Functions["audit-status"]; ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit-status not in /api/v1/functions after 30 s: %v", list.Functions)
		}
		time.Sleep(netdatatest.PollInterval)
	}
	if f := list.Functions["audit-status"]; !strings.Contains(f.Help, "audit status") || f.Timeout != 10 {
		t.Errorf("registration %+v", f)
	}

	for _, path := range []string{"/api/v1/function", "/api/v3/function"} {
		start := time.Now()
		tb, code, body := callStatus(t, n.URL, path)
		if code != 200 {
			t.Fatalf("%s: HTTP %d: %s", path, code, body)
		}
		t.Logf("%s answered in %v: rules %s, backlog %s, pid %s", path, time.Since(start).Round(time.Millisecond),
			tb.values["rules"], tb.values["backlog"], tb.values["pid"])
		checkKernelValues(t, tb, st)
	}
	// The charts kept coming, from the same plugin process.
	h := netdatatest.HostAt(n.URL)
	d := h.WaitChart(t, "linux_audit.backlog_limit", 30*time.Second)
	if v, ok := d.Latest("limit"); !ok || v != float64(st.BacklogLimit) {
		t.Errorf("linux_audit.backlog_limit = %v, %v; want %d", v, ok, st.BacklogLimit)
	}
	if p := pluginPIDs(bin); len(p) != 1 || p[0] != pid {
		t.Errorf("plugin processes %v, want still %d", p, pid)
	}
	if log := n.Log("collector.log"); strings.Contains(log, "audit.plugin") && strings.Contains(log, "disconnected") {
		t.Errorf("the plugin was disconnected:\n%s", netdatatest.Tail(log, 20))
	}
}

// processStart is when process pid started, from /proc (10 ms resolution).
func processStart(t *testing.T, pid int) time.Time {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22, starttime
	if err != nil {
		t.Fatal(err)
	}
	procStat, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	var btime int64
	for _, l := range strings.Split(string(procStat), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			btime, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / clkTck)
}

// silentUntil is when a plugin started at start with update every (seconds)
// and no keepalive would surely have been killed for 2 minutes of silence:
// it writes its charts at start (within 2 s) and its first update at the
// next multiple of every on the wall clock, then nothing for every seconds.
func silentUntil(start time.Time, every int64) time.Time {
	const limit, margin = 120 * time.Second, 5 * time.Second
	first := time.Unix((start.Unix()-1+every-1)/every*every, 0) // smallest multiple >= start-1 s
	last := start.Add(2 * time.Second)                          // the chart definitions
	if first.Sub(start) <= limit && first.After(last) {
		last = first
	}
	return last.Add(limit + margin)
}

// TestIntegrationND2KeepaliveAndQuit runs the plugin on Netdata 2.11 with
// update every = 180: 2.x disconnects a plugin silent for 2 minutes, so it
// lives through a silence longer than that only thanks to PLUGIN_KEEPALIVE
// (without it, 2.11 logs "PARSER: timeout while waiting for data" and
// disconnects it 120 s after its last line). Then the agent stops and the
// plugin exits (2.11 writes QUIT on its stdin and kills it right after). It
// replays recorded statuses: no kernel query, so another test's kernel stall
// cannot hold the plugin's exit. It takes 2 to 4 minutes (the first update
// waits for a multiple of 180 s on the wall clock), in parallel with others.
func TestIntegrationND2KeepaliveAndQuit(t *testing.T) {
	netdatatest.RequireNetdata(t)
	t.Parallel()
	dir, err := netdatatest.PluginDir(t, testkit.BuildPlugin(t, "-tags", "replay"), "") // -replay is only in the test build
	if err != nil {
		t.Fatal(err)
	}
	replay := filepath.Join(dir, "replay.jsonl")
	b, err := os.ReadFile(filepath.Join(testkit.Root(t), "plugin", "testdata", "replay.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(replay, b, 0o644); err != nil {
		t.Fatal(err)
	}
	const every = 180
	n := startND2(t, dir, fmt.Sprintf("[plugin:audit]\n    update every = %d\n    command options = -replay %s\n", every, replay))
	bin := filepath.Join(dir, "audit.plugin")
	pid := waitPluginPID(t, bin, 30*time.Second)
	started := processStart(t, pid)
	until := silentUntil(started, every)
	t.Logf("plugin %d started %s; a silent plugin would be disconnected before %s", pid, started.Format(time.TimeOnly), until.Format(time.TimeOnly))

	for time.Now().Before(until) {
		if p := pluginPIDs(bin); len(p) != 1 || p[0] != pid {
			t.Fatalf("after %v the plugin processes are %v, want still %d; collector.log:\n%s",
				time.Since(started).Round(time.Second), p, pid, netdatatest.Tail(n.Log("collector.log"), 20))
		}
		time.Sleep(time.Second)
	}
	for _, l := range strings.Split(n.Log("collector.log")+n.Log("daemon.log"), "\n") {
		if strings.Contains(l, "PD[audit]") && (strings.Contains(l, "disconnected") || strings.Contains(l, "timeout")) {
			t.Fatalf("the plugin was disconnected: %s", l)
		}
	}
	t.Logf("plugin %d still connected %v after it started, with update every %d", pid, time.Since(started).Round(time.Second), every)

	// Stopping the agent ends the plugin.
	agent := n.PID
	stopAt := time.Now()
	if err := syscall.Kill(agent, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for len(pluginPIDs(bin)) > 0 {
		if time.Since(stopAt) > 10*time.Second {
			t.Fatalf("plugin %d still running 10 s after the agent was told to stop", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("plugin gone %v after SIGTERM to the agent; its QUIT line in collector.log: %v",
		time.Since(stopAt).Round(time.Millisecond), strings.Contains(n.Log("collector.log"), "netdata said QUIT"))
}

// TestIntegrationStatusFunction137 runs the plugin under Debian's Netdata
// 1.37, which reads a FUNCTION registration's first three fields and calls
// with three fields (unit-tested: TestFunctionCallFormats): the registration
// must not break the plugin and the charts keep coming.
func TestIntegrationStatusFunction137(t *testing.T) {
	netdatatest.RequireNetdata(t)
	kerneltest.RequireRoot(t)
	dir := pluginDir(t, "cap_audit_control+ep")
	ruleDir, err := os.MkdirTemp("", "auditplugin-fn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ruleDir) })
	k := kerneltest.Setup(t, kerneltest.Settings{BacklogLimit: 64, BacklogWaitTime: 15000})
	k.AddRule(ruleDir, "auditplugin-function-test")
	st, err := kerneltest.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	n := netdatatest.Start(t, netdatatest.Options{PluginsDir: dir, RunAsNetdata: true})
	bin := filepath.Join(dir, "audit.plugin")
	d := n.WaitChart(t, "linux_audit.backlog_limit", 30*time.Second)
	pid := waitPluginPID(t, bin, 10*time.Second)

	// The keepalive is off here: 1.37 kills and restarts a plugin that sends
	// PLUGIN_KEEPALIVE (an unknown keyword to it), and the plugin sends it
	// only when NETDATA_VERSION is 2 or later.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte("\x00NETDATA_VERSION=v1.")) {
		t.Errorf("1.37 gives its plugin no NETDATA_VERSION=v1.*: the keepalive gate would not see 1.x")
	}

	// 1.37 took the registration: /api/v1/info lists it.
	var info struct {
		Functions map[string]struct {
			Help    string `json:"help"`
			Timeout int    `json:"timeout"`
		} `json:"functions"`
	}
	if err := netdatatest.GetJSON(n.URL()+"/api/v1/info", &info); err != nil {
		t.Fatal(err)
	}
	if f, ok := info.Functions["audit-status"]; !ok || !strings.Contains(f.Help, "audit status") || f.Timeout != 10 {
		t.Errorf("1.37 /api/v1/info functions: %+v", info.Functions)
	}
	// 1.37 routes Function calls only from Netdata Cloud (ACLK): its local
	// API refuses them; if a build allows them, the answer must be right.
	tb, code, body := callStatus(t, n.URL(), "/api/v1/function")
	switch code {
	case 200:
		checkKernelValues(t, tb, st)
	case 403:
		t.Logf("1.37's local API refuses Function calls (Netdata Cloud only): %s", strings.TrimSpace(body))
	default:
		t.Errorf("1.37 /api/v1/function: HTTP %d: %s", code, body)
	}

	// Charts still come from the same process, without restarts or errors.
	first, _ := d.Latest("limit")
	time.Sleep(3 * time.Second)
	d = n.WaitChart(t, "linux_audit.backlog_limit", 10*time.Second)
	if v, ok := d.Latest("limit"); !ok || v != first || v != float64(st.BacklogLimit) {
		t.Errorf("backlog_limit %v (%v) after the call, want %d", v, ok, st.BacklogLimit)
	}
	if p := pluginPIDs(bin); len(p) != 1 || p[0] != pid {
		t.Errorf("plugin processes %v, want still %d (restarted?)", p, pid)
	}
	for _, l := range strings.Split(n.ErrorLog(), "\n") {
		if strings.Contains(l, "audit") && (strings.Contains(l, "FUNCTION") || strings.Contains(l, "disconnected") || strings.Contains(l, "unknown")) {
			t.Errorf("error.log: %s", l)
		}
	}
}
