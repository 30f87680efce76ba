package netdatatest

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPlugin is a tiny plugins.d collector: one chart e2etest.value with
// dimension v, read each update_every from STATE/value. It records its argv
// and uid in STATE so tests can check how Netdata started it.
const testPlugin = `#!/bin/sh
trap 'exit 0' TERM INT PIPE
state='%s'
printf '%%s\n' "$0" "$@" > "$state/argv"
id -u > "$state/uid"
every=${1:-1}
echo "CHART e2etest.value '' 'E2E test value' 'things' e2etest e2etest.value line 1000 $every '' test e2e"
echo "DIMENSION v '' absolute 1 1"
while :; do
	v=$(cat "$state/value" 2>/dev/null)
	printf 'BEGIN e2etest.value\nSET v = %%s\nEND\n' "$v" || exit 0
	sleep "$every"
done
`

const testHealth = `# e2e test alert
template: e2e_value_high
      on: e2etest.value
  lookup: max -3s unaligned of v
   every: 1s
    warn: $this > 10
    info: e2e test value above 10
   units: things
`

// fixture holds the directories of the test plugin.
type fixture struct {
	plugins, health, state string
}

func newFixture(t *testing.T, value int) *fixture {
	t.Helper()
	f := &fixture{
		plugins: filepath.Join(t.TempDir(), "plugins.d"),
		health:  filepath.Join(t.TempDir(), "health.d"),
		state:   filepath.Join(t.TempDir(), "state"),
	}
	for _, d := range []string{f.plugins, f.health, f.state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The plugin runs as netdata and writes its argv and uid here.
	u, err := user.Lookup("netdata")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(f.state, uid, gid); err != nil {
		t.Fatal(err)
	}
	f.set(t, value)
	if err := os.WriteFile(filepath.Join(f.plugins, "test.plugin"), fmt.Appendf(nil, testPlugin, f.state), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.health, "e2e.conf"), []byte(testHealth), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// set changes the value the plugin reports; rename makes it atomic, so the
// plugin never reads an empty file (which would record a gap).
func (f *fixture) set(t *testing.T, v int) {
	t.Helper()
	tmp := filepath.Join(f.state, "value.tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.state, "value")); err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationNetdataPluginChart(t *testing.T) {
	RequireNetdata(t)
	t.Parallel()
	for _, a := range Agents {
		t.Run(a.Name, func(t *testing.T) { testPluginChart(t, a) })
	}
}

func testPluginChart(t *testing.T, a Agent) {
	a.Require(t)
	f := newFixture(t, 7)
	n := Start(t, Options{
		Binary:        a.Binary,
		PluginsDir:    f.plugins,
		RunAsNetdata:  true,
		PluginOptions: map[string]string{"test": "--foo bar"},
	})

	d := n.WaitChart(t, "e2etest.value", 20*time.Second)
	if v, ok := d.Latest("v"); !ok || v != 7 {
		t.Errorf("latest v = %v, %v; want 7 (labels %v rows %v)", v, ok, d.Labels, d.Rows)
	}
	charts, err := n.Charts()
	if err != nil {
		t.Fatal(err)
	}
	c := charts["e2etest.value"]
	if c.Context != "e2etest.value" || c.Units != "things" || c.Plugin != "test" {
		t.Errorf("chart = %+v", c)
	}
	// Only our plugin collects: stock plugins and netdata monitoring are off.
	if len(charts) != 1 {
		ids := make([]string, 0, len(charts))
		for id := range charts {
			ids = append(ids, id)
		}
		t.Errorf("charts = %v; want only e2etest.value", ids)
	}

	argv, _ := os.ReadFile(filepath.Join(f.state, "argv"))
	want := filepath.Join(f.plugins, "test.plugin") + "\n1\n--foo\nbar\n"
	if string(argv) != want {
		t.Errorf("plugin argv = %q; want %q", argv, want)
	}
	uid, _ := os.ReadFile(filepath.Join(f.state, "uid"))
	u, _ := user.Lookup("netdata")
	if strings.TrimSpace(string(uid)) != u.Uid {
		t.Errorf("plugin uid = %q; want netdata's %s", uid, u.Uid)
	}

	f.set(t, 42)
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := n.Data("e2etest.value", 3)
		if v, ok := d.Latest("v"); err == nil && ok && v == 42 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("value 42 not collected: %v %v", d, err)
		}
		time.Sleep(PollInterval)
	}

	n.Stop()
	if left := n.leftovers(); len(left) > 0 {
		t.Errorf("processes left after Stop: %v", left)
	}
}

func TestIntegrationNetdataHealthAlert(t *testing.T) {
	RequireNetdata(t)
	t.Parallel()
	f := newFixture(t, 5)
	n := Start(t, Options{PluginsDir: f.plugins, HealthDir: f.health, RunAsNetdata: true})
	n.WaitChart(t, "e2etest.value", 20*time.Second)

	start := time.Now()
	first := n.WaitAlarmStatus(t, "e2e_value_high", "CLEAR", 0, 20*time.Second)
	t.Logf("first evaluation (%s->%s) %v after the chart had data", first.OldStatus, first.Status, time.Since(start).Round(time.Second))
	// UNDEFINED when the first window held only the initial gap.
	if first.OldStatus != "UNINITIALIZED" && first.OldStatus != "UNDEFINED" {
		t.Errorf("first transition %s->%s", first.OldStatus, first.Status)
	}

	f.set(t, 20)
	start = time.Now()
	warn := n.WaitAlarmStatus(t, "e2e_value_high", "WARNING", first.UniqueID, 15*time.Second)
	t.Logf("WARNING %v after the value rose", time.Since(start).Round(time.Second))
	if warn.OldStatus != "CLEAR" || warn.Value == nil || *warn.Value != 20 || warn.Chart != "e2etest.value" {
		t.Errorf("warning entry = %+v", warn)
	}

	alarms, _, err := n.Alarms()
	if err != nil {
		t.Fatal(err)
	}
	a, ok := alarms["e2etest.value.e2e_value_high"]
	if !ok || a.Status != "WARNING" || a.Warn != "$this > 10" || a.Units != "things" {
		t.Errorf("alarm = %+v (present %v)", a, ok)
	}

	f.set(t, 5)
	start = time.Now()
	clear := n.WaitAlarmStatus(t, "e2e_value_high", "CLEAR", warn.UniqueID, 15*time.Second)
	t.Logf("CLEAR %v after the value fell (lookup window 3 s)", time.Since(start).Round(time.Second))
	if clear.OldStatus != "WARNING" {
		t.Errorf("clear entry = %+v", clear)
	}

	w, c := waitNotification(t, n.Host, warn.UniqueID), waitNotification(t, n.Host, clear.UniqueID)
	if w.Name != "e2e_value_high" || w.Chart != "e2etest.value" || w.Status != "WARNING" || w.OldStatus != "CLEAR" ||
		w.Value != 20 || w.Host != n.Hostname() || w.Roles != "root" || w.Units != "things" ||
		w.Info != "e2e test value above 10" || w.MachineGUID != "" ||
		!strings.HasSuffix(w.Source, "@"+filepath.Join(f.health, "e2e.conf")) || len(w.Args) != 29 {
		t.Errorf("warning notification = %+v", w)
	}
	if c.Status != "CLEAR" || c.OldStatus != "WARNING" || c.Value != 5 || c.OldValue != 20 {
		t.Errorf("clear notification = %+v", c)
	}
	// The first evaluation's CLEAR is not notified: nothing was raised before.
	for _, x := range n.Notifications() {
		if x.UniqueID == first.UniqueID {
			t.Errorf("initial %s->%s was notified", x.OldStatus, x.Status)
		}
	}
	if errs := n.HealthConfigErrors(); len(errs) > 0 {
		t.Errorf("health config errors: %q", errs)
	}
	if hl := n.HealthLog(); !strings.Contains(hl, "Alert event for [e2etest.value.e2e_value_high], value [20 things], status [WARNING]") {
		t.Errorf("health.log lacks the WARNING event:\n%s", hl)
	}
}

func TestIntegrationNetdataHealthConfigErrors(t *testing.T) {
	RequireNetdata(t)
	t.Parallel()
	health := filepath.Join(t.TempDir(), "health.d")
	if err := os.Mkdir(health, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := "template: e2e_bad\n      on: e2etest.value\n  lookup: maxx -5s of v\n   bogus: 1\n    warn: $this > 1\n"
	if err := os.WriteFile(filepath.Join(health, "bad.conf"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	n := Start(t, Options{HealthDir: health, RunAsNetdata: true})

	waitLogged := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			errs := n.HealthConfigErrors()
			if strings.Contains(strings.Join(errs, "\n"), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no health config error %q in %q", want, errs)
			}
			time.Sleep(PollInterval)
		}
	}
	waitLogged("invalid group method 'maxx'")
	waitLogged("has unknown key 'bogus'")

	// A file added later is read on SIGUSR2.
	if err := os.WriteFile(filepath.Join(health, "later.conf"), []byte("alarm: e2e_later\n    on: x.y\n  calc: 1 +\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.ReloadHealth(); err != nil {
		t.Fatal(err)
	}
	waitLogged("later.conf")
}

func TestIntegrationNetdataStreaming(t *testing.T) {
	RequireNetdata(t)
	t.Parallel()
	f := newFixture(t, 5)
	key := NewAPIKey()
	parent := Start(t, Options{
		HealthDir:    f.health,
		RunAsNetdata: true,
		Hostname:     "e2e-parent",
		Stream:       &StreamOptions{APIKey: key, Accept: true},
	})
	child := Start(t, Options{
		PluginsDir:   f.plugins,
		RunAsNetdata: true,
		Hostname:     "e2e-child",
		Stream:       &StreamOptions{To: parent.Addr(), APIKey: key},
	})

	t0 := time.Now()
	ch := parent.WaitHost(t, child, 20*time.Second)
	t.Logf("child connected after %v", time.Since(t0).Round(100*time.Millisecond))
	d := ch.WaitChart(t, "e2etest.value", 20*time.Second)
	t.Logf("child's chart has data on the parent after %v", time.Since(t0).Round(100*time.Millisecond))
	if v, ok := d.Latest("v"); !ok || v != 5 {
		t.Errorf("child's v on parent = %v, %v; want 5", v, ok)
	}
	if own, err := parent.Charts(); err != nil {
		t.Fatal(err)
	} else if _, ok := own["e2etest.value"]; ok {
		t.Errorf("child's chart appears on the parent's own host")
	}
	byName := parent.HostView("e2e-child")
	if c, err := byName.Charts(); err != nil {
		t.Errorf("/host/e2e-child/: %v", err)
	} else if _, ok := c["e2etest.value"]; !ok {
		t.Errorf("/host/e2e-child/api/v1/charts lacks e2etest.value")
	}

	// The parent evaluates its health configuration for the child.
	first := ch.WaitAlarmStatus(t, "e2e_value_high", "CLEAR", 0, 30*time.Second)
	t.Logf("parent first evaluated the child's alert after %v", time.Since(t0).Round(100*time.Millisecond))
	f.set(t, 20)
	warn := ch.WaitAlarmStatus(t, "e2e_value_high", "WARNING", first.UniqueID, 15*time.Second)
	t.Logf("parent raised WARNING for the child after %v", time.Since(t0).Round(100*time.Millisecond))
	if warn.Hostname != "e2e-child" {
		t.Errorf("warning entry host = %q", warn.Hostname)
	}
	got := waitNotification(t, *ch, warn.UniqueID)
	if got.Status != "WARNING" || got.Host != "e2e-child" || got.MachineGUID != child.MachineGUID() {
		t.Errorf("parent's notification for the child = %+v", got)
	}
	if own := parent.Notifications(); len(own) != 0 {
		t.Errorf("parent's notifications for itself = %+v", own)
	}
}

// waitNotification waits for the notification of alarm log entry id: the
// entry is logged before the script runs.
func waitNotification(t *testing.T, h Host, id int64) Notification {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		all := h.Notifications()
		for _, x := range all {
			if x.UniqueID == id {
				return x
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification for alarm log entry %d among %+v", id, all)
		}
		time.Sleep(PollInterval)
	}
}

// stubbornPlugin ignores SIGTERM and leaves a setsid'd grandchild behind, the
// worst case for cleanup.
const stubbornPlugin = `#!/bin/sh
trap '' TERM
setsid sh -c 'trap "" TERM; sleep 300' &
echo "CHART e2etest.stubborn '' 'Stubborn' 'things' e2etest e2etest.stubborn line 1000 $1 '' stubborn e2e"
echo "DIMENSION v '' absolute 1 1"
while :; do
	printf 'BEGIN e2etest.stubborn\nSET v = 1\nEND\n' || exit 0
	sleep "$1"
done
`

func TestIntegrationNetdataStopKillsLeftovers(t *testing.T) {
	RequireNetdata(t)
	t.Parallel()
	plugins := filepath.Join(t.TempDir(), "plugins.d")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "stubborn.plugin"), []byte(stubbornPlugin), 0o755); err != nil {
		t.Fatal(err)
	}
	n := Start(t, Options{PluginsDir: plugins, RunAsNetdata: true})
	n.WaitChart(t, "e2etest.stubborn", 20*time.Second)
	before := n.leftovers()
	if len(before) < 2 {
		t.Fatalf("expected the plugin and its grandchild among %v", before)
	}
	start := time.Now()
	n.Stop()
	t.Logf("stopped in %v", time.Since(start).Round(100*time.Millisecond))
	time.Sleep(100 * time.Millisecond)
	for _, p := range before {
		if err := syscall.Kill(p.pid, 0); err == nil && isLive(p.pid) {
			t.Errorf("process %d (%s) survived Stop", p.pid, p.cmdline)
		}
	}
}

// isLive reports whether pid exists and is not a zombie.
func isLive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}
