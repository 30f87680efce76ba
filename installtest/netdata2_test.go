package installtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"auditplugin/internal/kerneltest"
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
)

// install.sh's install into a Netdata 2.11 works in that Netdata: a copy of
// the 2.11 tree (/opt/netdata2, see netdatatest.Agent2; a copy, because other tests
// run the shared tree meanwhile) gets the plugin and the alerts with
// --plugins-dir and --health-dir; the agent, running only audit.plugin from
// its own plugins directory and loading its own stock health directory, runs
// the installed plugin as user netdata with nothing but its file capability,
// charts the kernel's values, and loads the installed alerts with their
// summaries; --uninstall leaves nothing behind.
// (TestIntegrationInstalledPluginInNetdata is the same on Debian's 1.37, with
// upgrades.)
func TestIntegrationInstalledPluginInNetdata211(t *testing.T) {
	netdatatest.RequireNetdata(t)
	requireRoot(t)
	testkit.RequireTools(t, "bash", "setcap", "getcap", "cp")
	netdataIDs(t)
	netdatatest.Agent2.Require(t)
	lockSystem(t) // the manifest in /var/lib is machine-wide
	if _, err := os.Lstat(debManifest); err == nil {
		t.Skipf("%s exists: audit.plugin is installed on this machine; remove it first (install.sh --uninstall)", debManifest)
	}
	kerneltest.Lock(t) // the plugin reads the real kernel
	if bnd, ok := capBnd(); ok && bnd&(1<<30) == 0 {
		t.Skipf("this test's capability bounding set (%x) lacks CAP_AUDIT_CONTROL: no file capability can work here", bnd)
	}
	plugin, alert := artifacts(t)
	t0 := time.Now()

	prefix := filepath.Join(t.TempDir(), "netdata2")
	if out, err := exec.Command("cp", "-a", filepath.Dir(filepath.Dir(filepath.Dir(netdatatest.Netdata2Binary))), prefix).CombinedOutput(); err != nil {
		t.Fatalf("copy the 2.11 tree: %v\n%s", err, out)
	}
	pluginsDir := filepath.Join(prefix, "usr/libexec/netdata/plugins.d")
	healthDir := filepath.Join(prefix, "usr/lib/netdata/conf.d/health.d")
	installed, installedAlert := filepath.Join(pluginsDir, pluginName), filepath.Join(healthDir, alertName)

	args := []string{"--plugins-dir", pluginsDir, "--health-dir", healthDir, "--binary", plugin, "--alert-file", alert, "--no-systemd"}
	t.Cleanup(func() {
		if _, err := os.Lstat(debManifest); err == nil {
			install(t, "--uninstall")
		}
	})
	if r := install(t, args...); r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	checkPlugin(t, installed, plugin)
	checkConfigFile(t, installedAlert, alert)
	if got := testkit.ReadFile(t, filepath.Join(healthDir, "audit.conf")); !strings.Contains(got, "audit_lost_events") {
		t.Errorf("Netdata's own health.d/audit.conf changed")
	}

	// Only audit.plugin of the tree's plugins runs.
	conf := "[plugins]\n\tenable running new plugins = no\n\taudit = yes\n"
	entries, err := os.ReadDir(pluginsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".plugin"); ok && name != "audit" {
			conf += "\t" + name + " = no\n"
		}
	}
	n := netdatatest.Start(t, netdatatest.Options{
		Binary:       filepath.Join(prefix, "usr/sbin/netdata"),
		PluginsDir:   pluginsDir,
		RunAsNetdata: true,
		StockHealth:  true,
		ExtraConf:    conf,
	})
	if n.Major < 2 {
		t.Fatalf("the copy runs Netdata %s", n.Version)
	}
	ndCheckPluginRuns(t, n, installed, t0)

	// The installed alerts are loaded, from the installed file, with their
	// summaries; Netdata's own audit alerts are there too.
	ndCheckAlertsLoaded(t, n, alert, func(name string, got netdatatest.Alarm) {
		if netdatatest.AlertSourceFile(got.Source) != installedAlert {
			t.Errorf("alert %s comes from %q, want the installed %s", name, got.Source, installedAlert)
		}
		if got.Summary == "" || got.Summary == name {
			t.Errorf("alert %s has no summary on %s: %q", name, n.Version, got.Summary)
		}
	})
	for _, l := range n.HealthConfigErrors() {
		t.Errorf("health configuration error: %s", l)
	}

	// --uninstall removes everything the install added.
	n.Stop()
	if r := install(t, "--uninstall"); r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	for _, p := range []string{installed, installedAlert, debManifest, manifestDir} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after --uninstall", p)
		}
	}
	t.Logf("done after %v", ndSince(t0))
}
