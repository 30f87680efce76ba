package packaging

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/netdatatest"
)

// startNetdata2 runs a Netdata 2.11 with the stock plugins plus those of
// pluginsDir, as user netdata, with extraConf appended to its netdata.conf.
func startNetdata2(t *testing.T, pluginsDir, extraConf string) *netdatatest.Lab2 {
	t.Helper()
	return netdatatest.StartLab2(t, pluginsDir, extraConf)
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
		pid := pluginPID(t, a.PID)
		checkRunsAsNetdata(t, pid)
		checkCharts(t, a)
		var configErrors []string
		for _, l := range strings.Split(a.Log("daemon.log")+a.Log("health.log"), "\n") {
			if strings.Contains(l, alert) && (strings.Contains(strings.ToLower(l), "error") || strings.Contains(l, "unknown")) {
				configErrors = append(configErrors, l)
			}
		}
		checkAlertsLoaded(t, a, configErrors, nil)
		checkPluginLog(t, a.Log("collector.log"))
		a.Stop(t)
	})
}
