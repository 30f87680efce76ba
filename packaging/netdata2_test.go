package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/netdatatest"
)

// Netdata 2.11, built for Debian 12 (which packages only 1.37), from
// ../shared/netdata-2.11/: its ndlab2.sh starts a throwaway agent.
const nd2Prefix = "/opt/netdata2"

// nd2Agent is a Netdata 2.11 started by ndlab2.sh; its API is read as
// netdatatest reads any agent's.
type nd2Agent struct {
	*netdatatest.Host
	url, workdir, logdir string
	pid                  int
}

// startNetdata2 runs ndlab2.sh: stock plugins dir plus pluginsDir (whose
// *.plugin it enables), run as user netdata, with extraConf appended to its
// netdata.conf; t.Cleanup stops it.
func startNetdata2(t *testing.T, pluginsDir, extraConf string) *nd2Agent {
	t.Helper()
	cmd := exec.Command(filepath.Join(nd2Prefix, "ndlab2.sh"), "-p", pluginsDir, "-u", "netdata")
	cmd.Env = append(os.Environ(), "ND_EXTRA_CONF="+extraConf)
	out, err := cmd.Output()
	a := &nd2Agent{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "ND_URL":
			a.url = v
		case "ND_PID":
			fmt.Sscan(v, &a.pid)
		case "ND_WORKDIR":
			a.workdir = v
		case "ND_LOGDIR":
			a.logdir = v
		}
	}
	if a.pid != 0 {
		t.Cleanup(func() { a.stop(t) })
	}
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ndlab2.sh: %v\n%s%s", err, out, stderr)
	}
	a.Host = netdatatest.HostAt(a.url)
	return a
}

func (a *nd2Agent) stop(t *testing.T) {
	if a.pid == 0 {
		return
	}
	if out, err := exec.Command(filepath.Join(nd2Prefix, "stop2.sh"), fmt.Sprint(a.pid), a.workdir).CombinedOutput(); err != nil {
		t.Errorf("stop2.sh: %v\n%s", err, out)
	}
	a.pid = 0
}

func (a *nd2Agent) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(a.logdir, name))
	return string(b)
}

// The .deb under a real Netdata 2.11 laid out as Netdata's own packages are:
// its plugins directory is /usr/libexec/netdata/plugins.d (the packaged
// file itself, no symlink) and its stock health directory
// /usr/lib/netdata/conf.d/health.d. The plugin runs as user netdata with
// only the file capability, beside 2.11's built-in audit module in
// debugfs.plugin, charts the kernel's values, and the packaged alerts load
// from the packaged file; dpkg -r leaves nothing.
func TestIntegrationDebInNetdata211(t *testing.T) {
	requireDebianMachine(t)
	netdatatest.RequireNetdata2(t)
	withDeb(t, false, func(t0 time.Time) {
		a := startNetdata2(t, filepath.Dir(plugin),
			"[directories]\n    stock health config = "+stockHealth+"\n")
		a.WaitChart(t, "linux_audit.backlog_utilization", 60*time.Second)
		t.Logf("Netdata 2.11: linux_audit.backlog_utilization has data %v after dpkg -i", time.Since(t0).Round(100*time.Millisecond))
		pid := pluginPID(t, a.pid)
		checkRunsAsNetdata(t, pid)
		checkCharts(t, a)
		var configErrors []string
		for _, l := range strings.Split(a.log("daemon.log")+a.log("health.log"), "\n") {
			if strings.Contains(l, alert) && (strings.Contains(strings.ToLower(l), "error") || strings.Contains(l, "unknown")) {
				configErrors = append(configErrors, l)
			}
		}
		checkAlertsLoaded(t, a, configErrors, nil)
		checkPluginLog(t, a.log("collector.log"))
		a.stop(t)
	})
}
