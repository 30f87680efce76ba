package installtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"auditplugin/internal/testkit"
)

// Tests in fake trees (--root): the other Netdata layouts, other systemd
// units, Netdata 2.11+, and files that are not ours. They touch nothing
// outside their temporary directory.

type layout struct {
	plugins, health, config string
	unitDir                 string // where its netdata.service goes
	bin                     string // where its netdata binary goes
}

var layouts = map[string]layout{
	"native": {"/usr/libexec/netdata/plugins.d", "/usr/lib/netdata/conf.d/health.d", "/etc/netdata", "/usr/lib/systemd/system", "/usr/sbin/netdata"},
	"debian": {"/usr/lib/netdata/plugins.d", "/usr/lib/netdata/conf.d/health.d", "/etc/netdata", "/lib/systemd/system", "/usr/sbin/netdata"},
	"static": {"/opt/netdata/usr/libexec/netdata/plugins.d", "/opt/netdata/usr/lib/netdata/conf.d/health.d", "/opt/netdata/etc/netdata", "/lib/systemd/system", "/opt/netdata/bin/netdata"},
}

// The [Service] capability lines of Debian 12's netdata.service (1.37.1),
// and a unit that grants CAP_AUDIT_CONTROL as upstream's does from 2.11.
const (
	debianUnit = `[Unit]
Description=netdata - Real-time performance monitoring

[Service]
Type=simple
ExecStart=/usr/sbin/netdata -D
User=netdata
NoNewPrivileges=false
# CAP_SETGID is required for setgroups()
CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_SETGID CAP_SETUID CAP_NET_RAW CAP_AUDIT_WRITE

[Install]
WantedBy=multi-user.target
`
	grantingUnit = `[Service]
Type=simple
ExecStart=/usr/sbin/netdata -D
CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_SETPCAP CAP_SYS_ADMIN CAP_SYS_PTRACE CAP_AUDIT_CONTROL
`
)

// fakeNetdata makes a Netdata tree of the given layout under a new
// directory, with netdata.service if unit is not empty, and returns the root.
func fakeNetdata(t *testing.T, name, unit string) string {
	t.Helper()
	l := layouts[name]
	root := t.TempDir()
	for _, d := range []string{l.plugins, l.config + "/health.d", "/etc/systemd/system", "/var/lib"} {
		if err := os.MkdirAll(root+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, root+l.plugins+"/apps.plugin", "#!/bin/sh\n", 0o750)
	writeFile(t, root+l.health+"/cpu.conf", "# a stock alert file\n", 0o644)
	if unit != "" {
		writeFile(t, root+l.unitDir+"/netdata.service", unit, 0o644)
	}
	return root
}

func fakeRoots(root string) []testkit.SnapRoot { return []testkit.SnapRoot{{Path: root, Depth: -1}} }

func requireFakeRoot(t *testing.T) {
	t.Helper()
	requireRoot(t)
	testkit.RequireTools(t, "bash", "setcap", "getcap")
	netdataIDs(t)
}

func TestIntegrationInstallFakeRootLayouts(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	cases := []struct {
		name, layout, unit string
		dropin             bool
		say                string
	}{
		{"native package, unit with the capability", "native", grantingUnit, false, "lets Netdata keep CAP_AUDIT_CONTROL: no drop-in needed"},
		{"Debian package, Debian's unit", "debian", debianUnit, true, "CapabilityBoundingSet lacks CAP_AUDIT_CONTROL"},
		{"static install, no unit", "static", "", false, "no netdata.service found"},
		{"static install, unit without the capability", "static", debianUnit, true, "CapabilityBoundingSet lacks CAP_AUDIT_CONTROL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := layouts[c.layout]
			root := fakeNetdata(t, c.layout, c.unit)
			before := testkit.Snapshot(t, fakeRoots(root)...)
			args := []string{"--root", root, "--binary", plugin, "--alert-file", alert}

			r := install(t, args...)
			if r.code != 0 {
				t.Fatalf("install failed:\n%s", r)
			}
			mustContain(t, "the output", r.stdout, c.say, "edit-config health.d/linux_audit.conf", root+l.config+"/edit-config")
			checkPlugin(t, root+l.plugins+"/"+pluginName, plugin)
			checkConfigFile(t, root+l.health+"/"+alertName, alert)
			dropin := root + dropinDir + "/" + dropinName
			if _, err := os.Stat(dropin); (err == nil) != c.dropin {
				t.Errorf("drop-in exists = %v, want %v", err == nil, c.dropin)
			}
			if c.dropin {
				mustContain(t, "the output", r.stdout, "RESTART NEEDED")
			} else {
				mustNotContain(t, "the output", r.stdout, "RESTART NEEDED")
			}
			// The manifest stores paths as the target system sees them.
			m := manifestEntries(t, root+manifestDir+"/"+manifestName)
			if _, ok := m["file "+l.plugins+"/"+pluginName]; !ok {
				t.Errorf("manifest lacks the plugin: %v", m)
			}

			installed := testkit.Snapshot(t, fakeRoots(root)...)
			r = install(t, args...)
			mustContain(t, "the output", r.stdout, "Nothing to do")
			mustBeSame(t, "a second install", installed, testkit.Snapshot(t, fakeRoots(root)...), testkit.Everything)

			r = install(t, "--root", root, "--uninstall")
			if r.code != 0 {
				t.Fatalf("uninstall failed:\n%s", r)
			}
			mustBeSame(t, "install + uninstall", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.NotDirTimes)
		})
	}
}

// The drop-in is added exactly when systemd would leave CAP_AUDIT_CONTROL out
// of netdata.service's bounding set, drop-ins and overriding units included.
func TestIntegrationInstallBoundingSet(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	const unitPath = "/lib/systemd/system/netdata.service"
	cases := []struct {
		name   string
		files  map[string]string // path under the root -> content
		dropin bool
	}{
		{"no CapabilityBoundingSet (every capability)", map[string]string{unitPath: "[Service]\nExecStart=/usr/sbin/netdata -D\n"}, false},
		{"Debian 12's list", map[string]string{unitPath: debianUnit}, true},
		{"a list with CAP_AUDIT_CONTROL", map[string]string{unitPath: grantingUnit}, false},
		{"lowercase name", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=cap_audit_control\n"}, false},
		{"~ without it", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=~CAP_SYS_ADMIN\n"}, false},
		{"~ with it", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=~CAP_SYS_ADMIN CAP_AUDIT_CONTROL\n"}, true},
		{"empty (no capability)", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=\n"}, true},
		{"a second line adds it", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=CAP_NET_RAW\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n"}, false},
		{"added, then emptied", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\nCapabilityBoundingSet=\n"}, true},
		{"only in a comment", map[string]string{unitPath: debianUnit + "# CapabilityBoundingSet=CAP_AUDIT_CONTROL\n"}, true},
		{"in another section", map[string]string{unitPath: debianUnit + "[X-Other]\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n"}, true},
		{"an admin's drop-in adds it", map[string]string{
			unitPath: debianUnit,
			"/etc/systemd/system/netdata.service.d/override.conf": "[Service]\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n",
		}, false},
		{"a vendor drop-in removes it", map[string]string{
			unitPath: grantingUnit,
			"/usr/lib/systemd/system/netdata.service.d/10-tight.conf": "[Service]\nCapabilityBoundingSet=~CAP_AUDIT_CONTROL\n",
		}, true},
		{"override.conf empties it (systemctl edit)", map[string]string{
			unitPath: grantingUnit,
			"/etc/systemd/system/netdata.service.d/override.conf": "[Service]\nCapabilityBoundingSet=\n",
		}, true},
		{"a drop-in for every service empties it", map[string]string{
			unitPath: grantingUnit,
			"/usr/lib/systemd/system/service.d/10-tight.conf": "[Service]\nCapabilityBoundingSet=\n",
		}, true},
		{"~ alone fills it, then a list replaces it", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=~\nCapabilityBoundingSet=CAP_NET_RAW\n"}, true},
		{"~ takes it out, a later list puts it back", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=~CAP_AUDIT_CONTROL\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n"}, false},
		{"a continued line", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=CAP_NET_RAW \\\n  CAP_AUDIT_CONTROL\n"}, false},
		{"by number", map[string]string{unitPath: "[Service]\nCapabilityBoundingSet=30\n"}, false},
		{"a drop-in in /run/systemd/system.control", map[string]string{
			unitPath: grantingUnit,
			"/run/systemd/system.control/netdata.service.d/50-x.conf": "[Service]\nCapabilityBoundingSet=~CAP_AUDIT_CONTROL\n",
		}, true},
		{"/etc's drop-in hides /usr/lib's of the same name", map[string]string{
			unitPath: grantingUnit,
			"/usr/lib/systemd/system/netdata.service.d/10-tight.conf": "[Service]\nCapabilityBoundingSet=~CAP_AUDIT_CONTROL\n",
			"/etc/systemd/system/netdata.service.d/10-tight.conf":     "[Service]\n",
		}, false},
		{"a unit in /etc replaces /lib's", map[string]string{
			unitPath:                              debianUnit,
			"/etc/systemd/system/netdata.service": grantingUnit,
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := fakeNetdata(t, "debian", "")
			for p, content := range c.files {
				// No CAP_AUDIT_* but CAP_AUDIT_CONTROL, and an ExecStart, for
				// systemd-analyze.
				// "~LIST" keeps the other CAP_AUDIT_*: take them out too.
				content = strings.ReplaceAll(content, "CAP_AUDIT_WRITE", "CAP_CHOWN")
				lines := strings.Split(content, "\n")
				for i, l := range lines {
					if strings.HasPrefix(l, "CapabilityBoundingSet=~") && l != "CapabilityBoundingSet=~" {
						lines[i] = l + " CAP_AUDIT_READ CAP_AUDIT_WRITE"
					}
				}
				content = strings.Join(lines, "\n")
				if strings.HasSuffix(p, ".service") && !strings.Contains(content, "ExecStart=") {
					content = strings.Replace(content, "[Service]\n", "[Service]\nExecStart=/usr/sbin/netdata -D\n", 1)
				}
				writeFile(t, root+p, content, 0o644)
			}
			oracle := hasSystemdAnalyze()
			if oracle && systemdGrantsAudit(t, root) == c.dropin {
				t.Errorf("the case is wrong: systemd grants CAP_AUDIT_CONTROL = %v before the install, want %v", c.dropin, !c.dropin)
			}
			r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
			if r.code != 0 {
				t.Fatalf("install failed:\n%s", r)
			}
			_, err := os.Stat(root + dropinDir + "/" + dropinName)
			if (err == nil) != c.dropin {
				t.Errorf("drop-in installed = %v, want %v", err == nil, c.dropin)
			}
			if oracle && !systemdGrantsAudit(t, root) {
				t.Errorf("after the install systemd leaves CAP_AUDIT_CONTROL out of netdata.service's bounding set")
			}
		})
	}
}

// A drop-in that is no longer needed (the admin or a newer Netdata grants
// the capability) is removed on the next run; the admin's files stay, also
// on uninstall.
func TestIntegrationInstallDropinNoLongerNeeded(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	root := fakeNetdata(t, "debian", debianUnit)
	args := []string{"--root", root, "--binary", plugin, "--alert-file", alert}
	if r := install(t, args...); r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	ours := root + dropinDir + "/" + dropinName
	if _, err := os.Stat(ours); err != nil {
		t.Fatalf("no drop-in: %v", err)
	}
	admins := root + dropinDir + "/override.conf"
	writeFile(t, admins, "[Service]\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n", 0o644)

	r := install(t, args...)
	if r.code != 0 {
		t.Fatalf("re-install failed:\n%s", r)
	}
	mustReport(t, r, "removed", ours)
	mustReport(t, r, "kept", root+dropinDir)
	mustContain(t, "the output", r.stdout, "no drop-in needed", "RESTART NEEDED")
	if _, err := os.Stat(ours); err == nil {
		t.Errorf("%s is still there", ours)
	}
	m := manifestEntries(t, root+manifestDir+"/"+manifestName)
	for k := range m {
		if strings.Contains(k, "netdata.service.d") {
			t.Errorf("manifest still lists %s", k)
		}
	}

	if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	if testkit.ReadFile(t, admins) != "[Service]\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n" {
		t.Errorf("the admin's drop-in changed")
	}
}

// On Netdata 2.11+, which has an audit module of its own, the install says
// how the two coexist, and leaves Netdata's health.d/audit.conf alone. The
// version comes from the package database (nothing in the target is run).
func TestIntegrationInstallNetdata211(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	const stockAudit = "template: audit_backlog_utilization\n      on: audit.backlog_utilization\n"
	cases := []struct {
		name       string
		status     string // netdata's Status and Version in /var/lib/dpkg/status; "" for none
		stockAudit bool
		want       string
	}{
		{"dpkg", "install ok installed\nVersion: 2.11.0", false, "Netdata 2.11+ detected (Netdata v2.11.0)"},
		{"dpkg, later, epoch and revision", "install ok installed\nVersion: 1:3.0.1-12", false, "Netdata 2.11+ detected (Netdata v3.0.1)"},
		{"stock audit.conf", "", true, "Netdata 2.11+ detected (its stock /usr/lib/netdata/conf.d/health.d/audit.conf)"},
		{"both", "install ok installed\nVersion: 2.11.2-1", true, "Netdata 2.11+ detected (Netdata v2.11.2)"},
		{"older", "install ok installed\nVersion: 2.10.3", false, "Netdata v2.10.3 has no audit collector of its own"},
		{"removed, config files left", "deinstall ok config-files\nVersion: 2.11.0", false, "Netdata has no audit collector of its own"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := fakeNetdata(t, "native", grantingUnit)
			l := layouts["native"]
			if c.status != "" {
				writeFile(t, root+"/var/lib/dpkg/status", "Package: libfoo\nStatus: install ok installed\nVersion: 9.9.9\n\n"+
					"Package: netdata\nStatus: "+c.status+"\nArchitecture: amd64\n\nPackage: zlib1g\nStatus: install ok installed\nVersion: 1.2.13\n", 0o644)
			}
			stock := root + l.health + "/audit.conf"
			if c.stockAudit {
				writeFile(t, stock, stockAudit, 0o644)
			}
			before := testkit.Snapshot(t, fakeRoots(root)...)
			r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
			if r.code != 0 {
				t.Fatalf("install failed:\n%s", r)
			}
			mustContain(t, "the output", r.stdout, c.want)
			if strings.Contains(c.want, "detected") {
				mustContain(t, "the output", r.stdout, "linux_audit.*", "audit.*", "both can run side by side",
					"audit_backlog_utilization", "health.d/linux_audit.conf",
					"enabled alarms = !audit_lost_events *", "!linux_audit_lost_records")
			}
			checkConfigFile(t, root+l.health+"/"+alertName, alert)
			if c.stockAudit && testkit.ReadFile(t, stock) != stockAudit {
				t.Errorf("install changed Netdata's %s", stock)
			}
			if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
				t.Fatalf("uninstall failed:\n%s", r)
			}
			mustBeSame(t, "install + uninstall", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.NotDirTimes)
		})
	}
}

// A file at one of our paths that the manifest does not list is someone
// else's: the install refuses and changes nothing.
func TestIntegrationInstallRefusesForeignFiles(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	l := layouts["debian"]
	for _, p := range []string{l.plugins + "/" + pluginName, l.health + "/" + alertName, dropinDir + "/" + dropinName} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			root := fakeNetdata(t, "debian", debianUnit)
			writeFile(t, root+p, "someone else's\n", 0o644)
			before := testkit.Snapshot(t, fakeRoots(root)...)
			r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			mustContain(t, "the refusal", r.stderr, root+p, "already exists and was not installed by this script")
			mustBeSame(t, "a refused install", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.Everything)
		})
	}
}

// Two Netdata installs: refuse until --plugins-dir chooses. An unknown plugins
// directory needs --health-dir (or --no-alerts).
func TestIntegrationInstallChoosingDirectories(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	root := fakeNetdata(t, "debian", "")
	static := layouts["static"]
	for _, d := range []string{static.plugins, static.health} {
		if err := os.MkdirAll(root+d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	before := testkit.Snapshot(t, fakeRoots(root)...)
	base := []string{"--root", root, "--binary", plugin, "--alert-file", alert}

	r := install(t, base...)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	mustContain(t, "the refusal", r.stderr, "several Netdata installs found", "--plugins-dir")
	mustBeSame(t, "a refused install", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.Everything)

	r = install(t, append(base, "--plugins-dir", static.plugins)...)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	checkPlugin(t, root+static.plugins+"/"+pluginName, plugin)
	checkConfigFile(t, root+static.health+"/"+alertName, alert)
	if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}

	custom := "/srv/netdata/plugins.d"
	if err := os.MkdirAll(root+custom, 0o755); err != nil {
		t.Fatal(err)
	}
	before = testkit.Snapshot(t, fakeRoots(root)...)
	r = install(t, append(base, "--plugins-dir", custom)...)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	mustContain(t, "the refusal", r.stderr, "--health-dir")
	mustBeSame(t, "a refused install", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.Everything)

	r = install(t, append(base, "--plugins-dir", custom, "--health-dir", static.health)...)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	checkPlugin(t, root+custom+"/"+pluginName, plugin)
	checkConfigFile(t, root+static.health+"/"+alertName, alert)

	// Moving the install elsewhere removes what the earlier run put down.
	r = install(t, append(base, "--plugins-dir", static.plugins, "--no-alerts")...)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	mustReport(t, r, "removed", root+custom+"/"+pluginName, root+static.health+"/"+alertName)
	checkPlugin(t, root+static.plugins+"/"+pluginName, plugin)
	if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	mustBeSame(t, "installs + uninstall", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.NotDirTimes)
}
