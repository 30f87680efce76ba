package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"auditplugin/internal/testkit"
)

// Units for the drop-in decision. Debian's 1.37 unit bounds capabilities
// without CAP_AUDIT_CONTROL; Netdata 2.11's own unit has it.
const (
	unitWithoutAudit = "[Unit]\nDescription=netdata\n[Service]\nCapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_SETGID CAP_SETUID CAP_NET_RAW CAP_AUDIT_WRITE\n"
	unitWithAudit    = "[Service]\nCapabilityBoundingSet=CAP_DAC_OVERRIDE\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\nCapabilityBoundingSet=CAP_SETGID CAP_SETUID\n"
	unitUnbounded    = "[Service]\nExecStart=/usr/sbin/netdata -D\n"
	adminAddsAudit   = "[Service]\nCapabilityBoundingSet=CAP_AUDIT_CONTROL\n"
	adminOther       = "[Service]\nNice=5\n"
)

// fakeTree makes a DPKG_ROOT with the packaged plugin file (as dpkg leaves
// it before postinst: no capability) and the given files.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, plugin)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		f := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// runScript runs packaging/scripts/NAME with sh, DPKG_ROOT=root and args.
func runScript(t *testing.T, root, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join(repoRoot(t), "packaging", "scripts", name)}, args...)...)
	cmd.Env = append(os.Environ(), "DPKG_ROOT="+root)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("$ DPKG_ROOT=%s sh %s %s\n%s", root, name, strings.Join(args, " "), out.String())
	return out.String(), err
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// The maintainer scripts on fake trees (DPKG_ROOT): postinstall adds the
// drop-in exactly when netdata.service's bounding set (unit plus other
// drop-ins) lacks CAP_AUDIT_CONTROL, with both dpkg's and rpm's arguments,
// and takes it away when an upgrade finds it no longer needed; preremove
// removes it on removal (dpkg remove, rpm 0) but not on upgrade, and its
// directory only when empty; preinstall refuses when install.sh installed
// the plugin. Root: postinstall chowns to netdata and sets the capability.
func TestIntegrationMaintainerScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the maintainer scripts (chown, setcap) on fake trees")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: postinstall chowns the plugin to root:netdata and sets a file capability")
	}
	testkit.RequireTools(t, "sh", "setcap", "getcap", "getent")
	if err := exec.Command("getent", "group", "netdata").Run(); err != nil {
		t.Skip("needs the netdata group (Debian's netdata package)")
	}
	const unitPath = "/lib/systemd/system/netdata.service"
	const etcUnit = "/etc/systemd/system/netdata.service.d/"
	cases := []struct {
		name       string
		files      map[string]string
		arg        string
		wantDropin bool
		wantOut    string // in postinstall's output
	}{
		{"Debian 1.37 unit", map[string]string{unitPath: unitWithoutAudit}, "configure", true, "lacks CAP_AUDIT_CONTROL: added"},
		{"Debian 1.37 unit, rpm install", map[string]string{"/usr/lib/systemd/system/netdata.service": unitWithoutAudit}, "1", true, "lacks CAP_AUDIT_CONTROL: added"},
		{"Netdata 2.11 unit", map[string]string{unitPath: unitWithAudit}, "configure", false, ""},
		{"unit without a bounding set", map[string]string{unitPath: unitUnbounded}, "2", false, ""},
		{"admin drop-in adds the capability", map[string]string{unitPath: unitWithoutAudit, etcUnit + "caps.conf": adminAddsAudit}, "configure", false, ""},
		{"admin drop-in about something else", map[string]string{unitPath: unitWithoutAudit, etcUnit + "nice.conf": adminOther}, "configure", true, ""},
		{"no netdata.service", nil, "configure", false, ""},
		{"a later drop-in empties the set", map[string]string{unitPath: unitWithoutAudit, etcUnit + "zzzz-strict.conf": "[Service]\nCapabilityBoundingSet=\n"}, "configure", true,
			"drop-in applied after"},
		{"NoNewPrivileges", map[string]string{unitPath: unitWithAudit + "NoNewPrivileges=yes\n"}, "configure", false, "NoNewPrivileges=yes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := fakeTree(t, c.files)
			out, err := runScript(t, root, "postinstall.sh", c.arg)
			if err != nil {
				t.Fatalf("postinstall %s: %v", c.arg, err)
			}
			if c.wantOut != "" && !strings.Contains(out, c.wantOut) {
				t.Errorf("postinstall output lacks %q", c.wantOut)
			}
			wantWarn := strings.Contains(c.wantOut, "applied after") || strings.Contains(c.wantOut, "NoNewPrivileges")
			if strings.Contains(out, "warning") != wantWarn {
				t.Errorf("postinstall warns = %v, want %v", !wantWarn, wantWarn)
			}
			p := filepath.Join(root, plugin)
			if out, _ := exec.Command("getcap", p).Output(); !strings.HasSuffix(strings.TrimSpace(string(out)), "cap_audit_control=ep") {
				t.Errorf("getcap = %q, want cap_audit_control=ep", out)
			}
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o750 {
				t.Errorf("plugin mode %v (%v), want 0750", fi.Mode(), err)
			}
			d := filepath.Join(root, dropin)
			if exists(d) != c.wantDropin {
				t.Fatalf("drop-in exists = %v, want %v", exists(d), c.wantDropin)
			}
			// Upgrades keep the drop-in; removal takes it and, if
			// empty, its directory.
			for _, arg := range []string{"upgrade", "1"} {
				if _, err := runScript(t, root, "preremove.sh", arg); err != nil || exists(d) != c.wantDropin {
					t.Errorf("preremove %s: %v; drop-in exists = %v", arg, err, exists(d))
				}
			}
			rm := "remove"
			if c.arg != "configure" {
				rm = "0"
			}
			if _, err := runScript(t, root, "preremove.sh", rm); err != nil {
				t.Fatalf("preremove %s: %v", rm, err)
			}
			if exists(d) {
				t.Errorf("preremove %s left the drop-in", rm)
			}
			dir := filepath.Join(root, dropinDir)
			adminFiles := false
			for f := range c.files {
				adminFiles = adminFiles || strings.HasPrefix(f, etcUnit)
			}
			if exists(dir) != adminFiles {
				t.Errorf("after preremove, %s exists = %v, want it only when it holds the admin's drop-in", dropinDir, exists(dir))
			}
		})
	}

	t.Run("upgrade to a Netdata that has the capability", func(t *testing.T) {
		root := fakeTree(t, map[string]string{unitPath: unitWithoutAudit})
		if _, err := runScript(t, root, "postinstall.sh", "configure"); err != nil || !exists(filepath.Join(root, dropin)) {
			t.Fatalf("postinstall: %v; drop-in exists = %v", err, exists(filepath.Join(root, dropin)))
		}
		if err := os.WriteFile(filepath.Join(root, unitPath), []byte(unitWithAudit), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runScript(t, root, "postinstall.sh", "configure")
		if err != nil || exists(filepath.Join(root, dropin)) || exists(filepath.Join(root, dropinDir)) {
			t.Errorf("postinstall after the unit gained CAP_AUDIT_CONTROL: %v; drop-in still there = %v", err, exists(filepath.Join(root, dropin)))
		}
		if !strings.Contains(out, "removed") {
			t.Errorf("postinstall does not say it removed the drop-in:\n%s", out)
		}
	})

	t.Run("preinstall refuses over install.sh", func(t *testing.T) {
		root := fakeTree(t, map[string]string{installSHMan: "# manifest\n"})
		out, err := runScript(t, root, "preinstall.sh", "install")
		if err == nil || !strings.Contains(out, "install.sh --uninstall") {
			t.Errorf("preinstall over install.sh's manifest: err %v, output %q; want a refusal naming install.sh --uninstall", err, out)
		}
		root = fakeTree(t, nil)
		if _, err := runScript(t, root, "preinstall.sh", "install"); err != nil {
			t.Errorf("preinstall on a clean tree: %v", err)
		}
	})
}
