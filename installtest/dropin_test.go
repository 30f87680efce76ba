package installtest

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"auditplugin/internal/testkit"
)

// The drop-in must win in systemd's order: drop-ins apply sorted by file name
// across all their directories, so one an admin adds with `systemctl edit`
// (override.conf) would, with a name sorting before it, empty the bounding
// set again. The judge of these tests is systemd's own unit loader:
// `systemd-analyze security --offline --root` on the fake tree.

// systemdGrantsAudit reports whether systemd, loading netdata.service from
// root with all its drop-ins, leaves any CAP_AUDIT_* capability in its
// bounding set. The units these tests write name no CAP_AUDIT_* other than
// CAP_AUDIT_CONTROL, so this is whether CAP_AUDIT_CONTROL is in it.
func systemdGrantsAudit(t *testing.T, root string) bool {
	t.Helper()
	cmd := exec.Command("systemd-analyze", "security", "--offline=yes", "--root="+root, "--json=short", "netdata.service")
	cmd.Dir = "/"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline: %v\n%s", err, out)
	}
	var items []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(out, &items); err != nil {
		t.Fatalf("systemd-analyze's JSON: %v\n%s", err, out)
	}
	for _, it := range items {
		if it.Name == "CapabilityBoundingSet=~CAP_AUDIT_*" {
			switch it.Description {
			case "Service has audit subsystem access":
				return true
			case "Service has no audit subsystem access":
				return false
			}
			t.Fatalf("systemd-analyze: unexpected description %q", it.Description)
		}
	}
	t.Fatalf("systemd-analyze reports no CapabilityBoundingSet=~CAP_AUDIT_* item:\n%s", out)
	return false
}

func requireSystemdAnalyze(t *testing.T) {
	t.Helper()
	if !hasSystemdAnalyze() {
		t.Skip("needs systemd-analyze security --offline (systemd 250+; Debian: apt-get install systemd)")
	}
}

func hasSystemdAnalyze() bool {
	out, err := exec.Command("systemd-analyze", "--help").CombinedOutput()
	return err == nil && strings.Contains(string(out), "--offline")
}

// Debian 12's unit without CAP_AUDIT_WRITE (so that systemd-analyze's
// CAP_AUDIT_* group stands for CAP_AUDIT_CONTROL alone).
const tightUnit = `[Unit]
Description=netdata - Real-time performance monitoring

[Service]
Type=simple
ExecStart=/usr/sbin/netdata -D
User=netdata
CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_SETGID CAP_SETUID CAP_NET_RAW
`

const (
	unitPathDebian = "/lib/systemd/system/netdata.service"
	resetDropin    = "[Service]\nCapabilityBoundingSet=\n"
)

// An admin's override.conf that empties the bounding set: the install still
// ends with CAP_AUDIT_CONTROL in it (systemd says so), and a second run
// changes nothing. A drop-in added later that sorts after ours and removes
// it again is found by the next run, which fails naming it.
func TestIntegrationInstallDropinAppliesLast(t *testing.T) {
	requireFakeRoot(t)
	requireSystemdAnalyze(t)
	plugin, alert := artifacts(t)
	root := fakeNetdata(t, "debian", "")
	writeFile(t, root+unitPathDebian, tightUnit, 0o644)
	writeFile(t, root+dropinDir+"/override.conf", resetDropin, 0o644)
	if systemdGrantsAudit(t, root) {
		t.Fatal("control: systemd grants CAP_AUDIT_CONTROL before the install")
	}
	args := []string{"--root", root, "--binary", plugin, "--alert-file", alert}

	r := install(t, args...)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	mustReport(t, r, "installed", root+dropinDir+"/"+dropinName)
	if !systemdGrantsAudit(t, root) {
		t.Errorf("after the install systemd leaves CAP_AUDIT_CONTROL out of netdata.service's bounding set")
	}
	installed := testkit.Snapshot(t, fakeRoots(root)...)
	r = install(t, args...)
	mustContain(t, "the second run", r.stdout, "Nothing to do")
	mustBeSame(t, "a second install", installed, testkit.Snapshot(t, fakeRoots(root)...), testkit.Everything)

	for _, later := range []string{
		dropinDir + "/zzz-tight.conf",
		"/usr/lib/systemd/system/service.d/zzz-all-services.conf",
		"/etc/systemd/system.control/netdata.service.d/zzzz-set-property.conf",
		// Same name as ours, in a directory systemd reads first: it hides ours.
		"/etc/systemd/system.control/netdata.service.d/" + dropinName,
	} {
		for _, content := range []string{resetDropin, "[Service]\nCapabilityBoundingSet=~CAP_AUDIT_CONTROL\n"} {
			writeFile(t, root+later, content, 0o644)
			if systemdGrantsAudit(t, root) {
				t.Fatalf("control: systemd still grants CAP_AUDIT_CONTROL with %s:\n%s", later, content)
			}
			r = install(t, args...)
			if r.code != 1 {
				t.Errorf("%s: exit %d, want 1", later, r.code)
			}
			if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 {
				t.Errorf("want one line on stderr, got %q", r.stderr)
			}
			mustContain(t, "the refusal", r.stderr, "would still lack CAP_AUDIT_CONTROL", root+later, "; fix: add ")
			if err := os.Remove(root + later); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
}

// An install by an earlier version left audit-plugin.conf, which sorts
// before override.conf: the next run replaces it with the new name, and
// systemd then grants the capability again.
func TestIntegrationInstallDropinMigratesOldName(t *testing.T) {
	requireFakeRoot(t)
	requireSystemdAnalyze(t)
	plugin, alert := artifacts(t)
	root := fakeNetdata(t, "debian", "")
	writeFile(t, root+unitPathDebian, tightUnit, 0o644)
	// What the earlier install.sh wrote: its drop-in and manifest.
	const oldDropin = `# Installed by audit.plugin's install.sh (removed by install.sh --uninstall).
# audit.plugin reads the kernel audit status with the file capability
# CAP_AUDIT_CONTROL, which works only inside the bounding set below.
# A second CapabilityBoundingSet= line adds to the set the unit already has.
[Service]
CapabilityBoundingSet=CAP_AUDIT_CONTROL
`
	old := root + dropinDir + "/audit-plugin.conf"
	writeFile(t, old, oldDropin, 0o644)
	writeFile(t, root+manifestDir+"/"+manifestName, "# an earlier install\n"+
		"file\t"+testkit.FileHash(t, old)+"\t"+dropinDir+"/audit-plugin.conf\n"+
		"dir\t-\t"+dropinDir+"\n", 0o644)
	if !systemdGrantsAudit(t, root) {
		t.Fatal("control: the old drop-in alone should grant CAP_AUDIT_CONTROL")
	}
	// Then the admin ran systemctl edit netdata.
	writeFile(t, root+dropinDir+"/override.conf", resetDropin, 0o644)
	if systemdGrantsAudit(t, root) {
		t.Fatal("control: override.conf should undo the old drop-in")
	}

	r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	mustReport(t, r, "removed", old)
	mustReport(t, r, "installed", root+dropinDir+"/"+dropinName)
	mustContain(t, "the output", r.stdout, "RESTART NEEDED")
	if _, err := os.Lstat(old); err == nil {
		t.Errorf("%s is still there", old)
	}
	if !systemdGrantsAudit(t, root) {
		t.Errorf("after the install systemd leaves CAP_AUDIT_CONTROL out of netdata.service's bounding set")
	}
	m := manifestEntries(t, root+manifestDir+"/"+manifestName)
	if _, ok := m["file "+dropinDir+"/audit-plugin.conf"]; ok {
		t.Errorf("manifest still lists the old drop-in: %v", m)
	}
	if _, ok := m["file "+dropinDir+"/"+dropinName]; !ok {
		t.Errorf("manifest lacks the new drop-in: %v", m)
	}
	if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	if testkit.ReadFile(t, root+dropinDir+"/override.conf") != resetDropin {
		t.Errorf("the admin's override.conf changed")
	}
}
