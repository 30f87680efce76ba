package installtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"auditplugin/internal/testkit"
)

// --root is a tree that may be anyone's (an image, a container's file
// system): install.sh, running as root, runs nothing from it, and reads,
// writes and removes nothing outside it, whatever its symlinks and its
// manifest say.

// A netdata binary in the root is never run; the version comes from the
// package database instead.
func TestIntegrationInstallRunsNothingFromRoot(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	marker := filepath.Join(t.TempDir(), "ran")
	root := fakeNetdata(t, "native", grantingUnit)
	for _, b := range []string{"/usr/sbin/netdata", "/usr/bin/netdata", "/bin/netdata", "/opt/netdata/bin/netdata"} {
		writeFile(t, root+b, "#!/bin/sh\necho \"uid $(id -u) ran $0 $*\" >>"+marker+"\necho 'netdata v2.11.0'\n", 0o755)
	}
	r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
	if r.code != 0 {
		t.Fatalf("install failed:\n%s", r)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("install.sh ran a program from the target root:\n%s", b)
	}
	mustContain(t, "the output", r.stdout, "has no audit collector of its own")
	if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
		t.Fatalf("uninstall failed:\n%s", r)
	}
	if b, err := os.ReadFile(marker); err == nil {
		t.Errorf("install.sh --uninstall ran a program from the target root:\n%s", b)
	}
}

// Symlinks in the root resolve inside it, as if chrooted there: an absolute
// target starts again at the root, ".." stops at it. A directory that
// leads outside is then simply not there.
func TestIntegrationInstallSymlinksStayInRoot(t *testing.T) {
	requireFakeRoot(t)
	plugin, alert := artifacts(t)
	l := layouts["debian"]

	// outsideTree makes a Netdata-like tree outside the root, the target of
	// the escaping symlinks.
	outsideTree := func(t *testing.T) string {
		o := t.TempDir()
		for _, d := range []string{"/plugins.d", "/conf.d/health.d"} {
			if err := os.MkdirAll(o+d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		writeFile(t, o+"/plugins.d/apps.plugin", "#!/bin/sh\n", 0o755)
		return o
	}
	cases := []struct {
		name string
		link func(root, outside string) (path, target string)
		want string
	}{
		{"netdata dir, absolute symlink out", func(root, o string) (string, string) {
			return root + "/usr/lib/netdata", o
		}, "Netdata not found"},
		{"netdata dir, relative symlink out", func(root, o string) (string, string) {
			return root + "/usr/lib/netdata", strings.Repeat("../", 12) + strings.TrimPrefix(o, "/")
		}, "Netdata not found"},
		{"health dir, absolute symlink out", func(root, o string) (string, string) {
			return root + l.health, o + "/conf.d/health.d"
		}, "stock health directory"},
		{"manifest dir, absolute symlink out", func(root, o string) (string, string) {
			return root + manifestDir, o
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outside := outsideTree(t)
			root := fakeNetdata(t, "debian", debianUnit)
			link, target := c.link(root, outside)
			if err := os.RemoveAll(link); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			before := testkit.Snapshot(t, fakeRoots(outside)...)
			r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
			if c.want != "" {
				if r.code != 1 {
					t.Errorf("exit %d, want 1", r.code)
				}
				mustContain(t, "the refusal", r.stderr, c.want)
			} else {
				if r.code != 0 {
					t.Fatalf("install failed:\n%s", r)
				}
				// The manifest went to the link's target taken inside the root.
				if _, err := os.Stat(root + outside + "/" + manifestName); err != nil {
					t.Errorf("manifest not under the root: %v", err)
				}
				if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
					t.Errorf("uninstall failed:\n%s", r)
				}
			}
			mustBeSame(t, "an install into a root whose symlink points outside it", before, testkit.Snapshot(t, fakeRoots(outside)...), testkit.Everything)
		})
	}

	// A symlink that stays inside the root is followed: an image's
	// /usr/lib/netdata -> /usr/share/nd (absolute, meant inside the image).
	t.Run("absolute symlink inside the root", func(t *testing.T) {
		root := fakeNetdata(t, "debian", debianUnit)
		if err := os.Rename(root+"/usr/lib/netdata", root+"/usr/share-nd"); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/usr/share-nd", root+"/usr/lib/netdata"); err != nil {
			t.Fatal(err)
		}
		r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
		if r.code != 0 {
			t.Fatalf("install failed:\n%s", r)
		}
		checkPlugin(t, root+"/usr/share-nd/plugins.d/"+pluginName, plugin)
		if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
			t.Fatalf("uninstall failed:\n%s", r)
		}
		if _, err := os.Lstat(root + "/usr/share-nd/plugins.d/" + pluginName); err == nil {
			t.Errorf("uninstall left the plugin")
		}
	})
}

// --uninstall removes only what the manifest lists at paths install.sh
// installs to, inside the root: an entry with "..", "//" or "." components,
// or a name that is not ours, is ignored with a warning, and an entry whose
// directory is a symlink out of the root finds nothing there, even when the
// file outside has the listed hash.
func TestIntegrationUninstallStaysInRoot(t *testing.T) {
	requireFakeRoot(t)
	up := strings.Repeat("/..", 12)
	// Each case gets its own victims: vdir/audit.plugin and vdir/passwd.
	cases := []struct {
		name  string
		lines func(vdir, sum, otherSum string) []string
		link  func(vdir string) [2]string // symlink to make inside the root: path, target
		warn  string
	}{
		{"dot-dot", func(v, sum, _ string) []string { return []string{"file\t" + sum + "\t" + up + v + "/" + pluginName} }, nil, "ignored line"},
		{"dot-dot inside a path", func(v, sum, _ string) []string {
			return []string{"file\t" + sum + "\t/usr/lib/netdata/plugins.d" + up + v + "/" + pluginName}
		}, nil, "ignored line"},
		{"double slash", func(v, sum, _ string) []string { return []string{"file\t" + sum + "\t/" + v + "/" + pluginName} }, nil, "ignored line"},
		{"dot", func(v, sum, _ string) []string { return []string{"file\t" + sum + "\t/." + v + "/" + pluginName} }, nil, "ignored line"},
		{"not our name", func(v, _, otherSum string) []string { return []string{"file\t" + otherSum + "\t" + v + "/passwd"} }, nil, "ignored line"},
		{"a dir that is not ours", func(v, _, _ string) []string { return []string{"dir\t-\t" + v} }, nil, "ignored line"},
		{"symlinked directory out of the root", func(_, sum, _ string) []string {
			return []string{"file\t" + sum + "\t/usr/lib/netdata/plugins.d/" + pluginName}
		}, func(v string) [2]string { return [2]string{"/usr/lib/netdata/plugins.d", v} }, ""},
		{"relative symlink out of the root", func(_, sum, _ string) []string {
			return []string{"file\t" + sum + "\t/usr/lib/netdata/plugins.d/" + pluginName}
		}, func(v string) [2]string {
			return [2]string{"/usr/lib/netdata/plugins.d", strings.Repeat("../", 12) + strings.TrimPrefix(v, "/")}
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vdir := t.TempDir()
			writeFile(t, vdir+"/"+pluginName, "someone else's plugin\n", 0o755)
			writeFile(t, vdir+"/passwd", "root:x:0:0\n", 0o644)
			root := fakeNetdata(t, "debian", "")
			if c.link != nil {
				l := c.link(vdir)
				if err := os.RemoveAll(root + l[0]); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(l[1], root+l[0]); err != nil {
					t.Fatal(err)
				}
			}
			lines := c.lines(vdir, testkit.FileHash(t, vdir+"/"+pluginName), testkit.FileHash(t, vdir+"/passwd"))
			writeFile(t, root+manifestDir+"/"+manifestName, "# test\n"+strings.Join(lines, "\n")+"\n", 0o644)
			before := testkit.Snapshot(t, fakeRoots(vdir)...)
			r := install(t, "--root", root, "--uninstall")
			if r.code != 0 {
				t.Errorf("exit %d, want 0", r.code)
			}
			if c.warn != "" {
				mustContain(t, "the warning", r.stderr, c.warn)
			}
			mustBeSame(t, "an uninstall", before, testkit.Snapshot(t, fakeRoots(vdir)...), testkit.Everything)
		})
	}
}

// A manifest someone else could have written is not trusted.
func TestIntegrationUninstallRefusesForeignManifest(t *testing.T) {
	requireFakeRoot(t)
	for name, fix := range map[string]func(p string){
		"owned by nobody":     func(p string) { chown(t, p, nobody) },
		"writable by others":  func(p string) { chmod(t, p, 0o646) },
		"writable by a group": func(p string) { chmod(t, p, 0o664) },
	} {
		t.Run(name, func(t *testing.T) {
			root := fakeNetdata(t, "debian", "")
			m := root + manifestDir + "/" + manifestName
			writeFile(t, m, "# test\n", 0o644)
			fix(m)
			before := testkit.Snapshot(t, fakeRoots(root)...)
			r := install(t, "--root", root, "--uninstall")
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			mustContain(t, "the refusal", r.stderr, "refusing to use "+m, "chown root:root "+m)
			mustBeSame(t, "a refused uninstall", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.Everything)
		})
	}
}
