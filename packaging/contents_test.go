package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"auditplugin/internal/testkit"
)

// scriptFile reads packaging/scripts/NAME.
func scriptFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The .deb holds exactly the plugin (root:netdata 0750), Debian's symlink to
// it, the alert file (root:root 0644, the repository's health.d/audit.conf),
// the directories of the plugin, and the three maintainer scripts; it
// depends on netdata (the group) and libcap2-bin (setcap); its version is
// packaging/version.sh's; and two builds of one commit are byte-identical.
func TestDebPackage(t *testing.T) {
	testkit.SkipShort(t, "builds the packages with nfpm (go run, may download it)")
	testkit.RequireTools(t, "dpkg-deb", "make", "git")
	deb := buildPackage(t, "deb")

	var got []string
	for _, l := range strings.Split(strings.TrimSpace(run(t, "dpkg-deb", "-c", deb)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		// perms owner/group size date time path [-> target]
		entry := f[0] + " " + f[1] + " " + strings.Join(f[5:], " ")
		got = append(got, entry)
	}
	sort.Strings(got)
	want := []string{
		"-rw-r--r-- root/root ./usr/lib/netdata/conf.d/health.d/linux_audit.conf",
		"-rwxr-x--- root/netdata ./usr/libexec/netdata/plugins.d/audit.plugin",
		"drwxr-xr-x root/root ./usr/",
		"drwxr-xr-x root/root ./usr/lib/",
		"drwxr-xr-x root/root ./usr/lib/netdata/",
		"drwxr-xr-x root/root ./usr/lib/netdata/conf.d/",
		"drwxr-xr-x root/root ./usr/lib/netdata/conf.d/health.d/",
		"drwxr-xr-x root/root ./usr/lib/netdata/plugins.d/",
		"drwxr-xr-x root/root ./usr/libexec/",
		"drwxr-xr-x root/root ./usr/libexec/netdata/",
		"drwxr-xr-x root/root ./usr/libexec/netdata/plugins.d/",
		"lrwxrwxrwx root/root ./usr/lib/netdata/plugins.d/audit.plugin -> " + plugin,
	}
	// dpkg-deb prints symlinks' modes as the archive stores them.
	for i, g := range got {
		if strings.HasPrefix(g, "l") {
			got[i] = "lrwxrwxrwx" + g[10:]
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dpkg-deb -c:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The packaged files are the repository's.
	x := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, x)
	if testkit.FileHash(t, filepath.Join(x, alert)) != testkit.FileHash(t, filepath.Join(repoRoot(t), "health.d", "audit.conf")) {
		t.Errorf("%s differs from health.d/audit.conf", alert)
	}
	out, err := exec.Command(filepath.Join(x, plugin), "-version").Output()
	if err != nil || strings.TrimSpace(string(out)) != "audit.plugin "+makeVersion(t) {
		t.Errorf("packaged plugin -version = %q (%v), want audit.plugin %s", out, err, makeVersion(t))
	}

	field := func(name string) string {
		return strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, name))
	}
	if v := field("Version"); v != wantVersion(t)+"-1" {
		t.Errorf("Version %q, want %q", v, wantVersion(t)+"-1")
	}
	if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*-1$`).MatchString(field("Version")) {
		t.Errorf("Version %q is not a valid Debian version", field("Version"))
	}
	if d := field("Depends"); d != "netdata, libcap2-bin" {
		t.Errorf("Depends %q, want netdata, libcap2-bin", d)
	}
	if p := field("Package"); p != pkgName {
		t.Errorf("Package %q", p)
	}

	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctl)
	for script, src := range map[string]string{"preinst": "preinstall.sh", "postinst": "postinstall.sh", "prerm": "preremove.sh"} {
		b, err := os.ReadFile(filepath.Join(ctl, script))
		if err != nil {
			t.Errorf("control %s: %v", script, err)
			continue
		}
		if string(b) != scriptFile(t, src) {
			t.Errorf("control %s is not packaging/scripts/%s", script, src)
		}
	}
	// No postrm and no conffiles: `dpkg -r` purges the package by itself.
	for _, f := range []string{"postrm", "conffiles"} {
		if _, err := os.Stat(filepath.Join(ctl, f)); err == nil {
			t.Errorf("the control archive has a %s", f)
		}
	}

	// Reproducible: a second build of the same commit is the same file.
	again := makePackage(t, "deb", t.TempDir())
	if testkit.FileHash(t, again) != testkit.FileHash(t, deb) {
		t.Errorf("two builds of one commit differ: %s vs %s", deb, again)
	}
}

// The .rpm, read back with `rpm -qp --scripts --filesbypkg` (no rpm system
// here): the same two files with the same owners and modes, no directories
// (the netdata package owns them), the same scriptlets, and Requires on
// netdata and libcap (setcap).
func TestRPMPackage(t *testing.T) {
	testkit.SkipShort(t, "builds the packages with nfpm (go run, may download it)")
	testkit.RequireTools(t, "rpm", "make", "git")
	rpm := buildPackage(t, "rpm")

	files := strings.Fields(run(t, "rpm", "-qp", "--filesbypkg", rpm))
	wantFiles := []string{pkgName, alert, pkgName, plugin}
	if strings.Join(files, " ") != strings.Join(wantFiles, " ") {
		t.Errorf("rpm --filesbypkg: %q, want %q", files, wantFiles)
	}
	attrs := run(t, "rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]", rpm)
	wantAttrs := "-rw-r--r-- root:root " + alert + "\n-rwxr-x--- root:netdata " + plugin + "\n"
	if attrs != wantAttrs {
		t.Errorf("rpm file attributes:\n%s\nwant:\n%s", attrs, wantAttrs)
	}

	scripts := run(t, "rpm", "-qp", "--scripts", rpm)
	for head, src := range map[string]string{
		"preinstall scriptlet (using /bin/sh):":   "preinstall.sh",
		"postinstall scriptlet (using /bin/sh):":  "postinstall.sh",
		"preuninstall scriptlet (using /bin/sh):": "preremove.sh",
	} {
		body := scriptFile(t, src)
		if !strings.Contains(scripts, head+"\n"+body) {
			t.Errorf("rpm --scripts has no %q with packaging/scripts/%s:\n%s", head, src, scripts)
		}
	}
	if strings.Contains(scripts, "postuninstall scriptlet") {
		t.Errorf("rpm has a postuninstall scriptlet:\n%s", scripts)
	}
	// The scriptlets act on rpm's arguments: %post 1|2 (install, upgrade),
	// %preun 0 (erase, not upgrade).
	if !strings.Contains(scriptFile(t, "postinstall.sh"), "configure | abort-remove | 1 | 2)") ||
		!strings.Contains(scriptFile(t, "preremove.sh"), "remove | 0)") {
		t.Error("the scripts do not handle rpm's numeric arguments")
	}

	reqs := run(t, "rpm", "-qp", "--requires", rpm)
	for _, r := range []string{"netdata", "libcap"} {
		if !regexp.MustCompile(`(?m)^` + r + `$`).MatchString(reqs) {
			t.Errorf("rpm --requires lacks %s:\n%s", r, reqs)
		}
	}
	if v := strings.TrimSpace(run(t, "rpm", "-qp", "--qf", "%{VERSION}-%{RELEASE} %{ARCH}", rpm)); !strings.HasPrefix(v, wantVersion(t)+"-1 ") {
		t.Errorf("rpm version %q, want %s-1", v, wantVersion(t))
	}
}
