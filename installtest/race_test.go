package installtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/testkit"
)

// Tests of the file capability's safety: who can write the directories on
// the way to the plugin, and whether a file of someone else's can ever end up
// with cap_audit_control. The attacker is a real process running as nobody
// (uid 65534) that renames its own executable onto every name it can see
// or guess, as fast as it can, while install.sh runs.

const nobody = 65534

// attackerSource is the attacker, built by the test. It loops until killed,
// trying to put its own file (mode 0755, "#!/bin/sh ... evil") at the names
// an installer uses: the old fixed temporary name, the plugin itself, and
// inside any directory it sees there; it prints how many tries succeeded.
const attackerSource = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	dir := os.Args[1]
	own := filepath.Join(dir, fmt.Sprintf(".evil.%d", os.Getpid()))
	evil := []byte("#!/bin/sh\necho 'audit.plugin evil'\n")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	tries, wins := 0, 0
	for {
		select {
		case <-stop:
			fmt.Printf("tries %d wins %d\n", tries, wins)
			return
		default:
		}
		names := []string{".audit.plugin.new", "audit.plugin"}
		if entries, err := os.ReadDir(dir); err == nil {
			for _, e := range entries {
				if e.IsDir() {
					names = append(names, e.Name()+"/new", e.Name()+"/audit.plugin")
				}
			}
		}
		for _, n := range names {
			tries++
			if err := os.WriteFile(own, evil, 0o755); err != nil {
				continue
			}
			if os.Rename(own, filepath.Join(dir, n)) == nil {
				wins++
			}
		}
	}
}
`

var attackerBuild struct {
	once sync.Once
	bin  string
	err  error
}

// attackerBinary builds the attacker into the 0755 artifacts directory, so
// that nobody can run it.
func attackerBinary(t *testing.T) string {
	t.Helper()
	artifacts(t)
	attackerBuild.once.Do(func() {
		src := filepath.Join(build.dir, "attacker")
		if err := os.MkdirAll(src, 0o755); err != nil {
			attackerBuild.err = err
			return
		}
		if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(attackerSource), 0o644); err != nil {
			attackerBuild.err = err
			return
		}
		if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module attacker\n\ngo 1.21\n"), 0o644); err != nil {
			attackerBuild.err = err
			return
		}
		attackerBuild.bin = filepath.Join(build.dir, "attacker.bin")
		cmd := exec.Command("go", "build", "-o", attackerBuild.bin, ".")
		cmd.Dir = src
		cmd.Env = envWith("CGO_ENABLED", "0", "GOWORK", "off", "GOFLAGS", "")
		if out, err := cmd.CombinedOutput(); err != nil {
			attackerBuild.err = fmt.Errorf("go build attacker: %v\n%s", err, out)
		}
	})
	if attackerBuild.err != nil {
		t.Fatal(attackerBuild.err)
	}
	return attackerBuild.bin
}

// startAttacker runs the attacker as nobody against dir until the returned
// function is called, which stops it and returns its "tries N wins M" line.
func startAttacker(t *testing.T, dir string) (stop func() string) {
	t.Helper()
	bin := attackerBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	// One thread at the lowest priority: it races on every run without
	// starving the installs of this 2-core machine's time.
	cmd := exec.CommandContext(ctx, "nice", "-n", "19", "setpriv", fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody),
		"--clear-groups", "--inh-caps=-all", bin, dir)
	cmd.Env = envWith("GOMAXPROCS", "1")
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start attacker: %v", err)
	}
	done := false
	stop = func() string {
		if !done {
			done = true
			cancel()
			_ = cmd.Wait()
		}
		return strings.TrimSpace(out.String())
	}
	t.Cleanup(func() { stop() })
	return stop
}

// tinyPlugin writes a stand-in plugin that only answers -version: the race
// tests install it hundreds of times, and install.sh checks what it installs
// only by its -version line.
func tinyPlugin(t *testing.T, dir, version string) string {
	t.Helper()
	p := filepath.Join(dir, "plugin-"+version)
	writeFile(t, p, "#!/bin/sh\necho 'audit.plugin "+version+"'\n", 0o755)
	return p
}

// openUp lets nobody traverse from / to root (t.TempDir makes 0700
// directories), so that the attacker can reach the plugins directory.
func openUp(t *testing.T, root string) {
	t.Helper()
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// capsIn returns the files directly in dir, and one level below, that carry a
// file capability.
func capsIn(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() && testkit.FileCaps(p) != "" {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// Into a plugins directory that nobody (uid 65534) can write, install.sh
// refuses, every time, while the attacker races it; nothing ever gets the
// capability. Today's main installs, and can give the attacker's file the
// capability.
func TestIntegrationInstallRaceWritableDirRefused(t *testing.T) {
	requireFakeRoot(t)
	testkit.RequireTools(t, "setpriv", "go")
	root := fakeNetdata(t, "debian", "")
	openUp(t, root)
	plugins := root + layouts["debian"].plugins
	if err := os.Chmod(plugins, 0o777); err != nil {
		t.Fatal(err)
	}
	bins := t.TempDir()
	plugin := tinyPlugin(t, bins, "race")
	stop := startAttacker(t, plugins)

	const runs = 200
	start := time.Now()
	for i := 0; i < runs; i++ {
		r := runQuiet(t, "--root", root, "--binary", plugin, "--no-alerts", "--no-systemd")
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to install: "+plugins+" is writable by users other than root") ||
			strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 || !strings.Contains(r.stderr, "chmod go-w "+plugins) {
			t.Fatalf("run %d: want exit 1 and one line refusing %s, naming the fix:\n%s", i, plugins, r)
		}
		if c := capsIn(t, plugins); len(c) != 0 {
			t.Fatalf("run %d: files with a capability in the attacker's directory: %v", i, c)
		}
	}
	t.Logf("%d refused installs in %v; attacker: %s", runs, time.Since(start).Round(time.Millisecond), stop())
}

// Into a plugins directory only root can write, install.sh installs, every
// time, while the attacker races it from the outside: the plugin is always
// ours (owner, hash, capability), and no other file carries a capability.
func TestIntegrationInstallRaceRootOnlyDir(t *testing.T) {
	requireFakeRoot(t)
	testkit.RequireTools(t, "setpriv", "go")
	root := fakeNetdata(t, "debian", "")
	openUp(t, root)
	plugins := root + layouts["debian"].plugins
	bins := t.TempDir()
	// Two versions, so that every run replaces the plugin.
	versions := []string{tinyPlugin(t, bins, "race-a"), tinyPlugin(t, bins, "race-b")}
	hashes := []string{testkit.FileHash(t, versions[0]), testkit.FileHash(t, versions[1])}
	installed := filepath.Join(plugins, pluginName)
	_, gid := netdataIDs(t)
	stop := startAttacker(t, plugins)
	t.Cleanup(func() { runQuiet(t, "--root", root, "--uninstall") })

	const runs = 200
	start := time.Now()
	for i := 0; i < runs; i++ {
		r := runQuiet(t, "--root", root, "--binary", versions[i%2], "--no-alerts", "--no-systemd")
		if r.code != 0 {
			t.Fatalf("run %d: install failed:\n%s", i, r)
		}
		fi, err := os.Lstat(installed)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.Mode().IsRegular() || st.Uid != 0 || int(st.Gid) != gid || fi.Mode().Perm() != 0o750 {
			t.Fatalf("run %d: %s is %v %d:%d, want a regular file root:netdata 0750", i, installed, fi.Mode(), st.Uid, st.Gid)
		}
		if h := testkit.FileHash(t, installed); h != hashes[i%2] {
			t.Fatalf("run %d: %s is not the file installed (sha256 %s)", i, installed, h)
		}
		if out, err := exec.Command("getcap", installed).Output(); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "cap_audit_control=ep") {
			t.Fatalf("run %d: getcap %s = %q, %v", i, installed, out, err)
		}
		if c := capsIn(t, plugins); len(c) != 1 || c[0] != installed {
			t.Fatalf("run %d: files with a capability: %v, want only %s", i, c, installed)
		}
	}
	res := stop()
	t.Logf("%d installs in %v; attacker: %s", runs, time.Since(start).Round(time.Millisecond), res)
	if !strings.HasPrefix(res, "tries ") || strings.HasPrefix(res, "tries 0 ") || !strings.HasSuffix(res, " wins 0") {
		t.Errorf("the attacker should have tried, and never managed, to rename a file into %s: %q", plugins, res)
	}
}

// runQuiet runs install.sh without logging its output (hundreds of runs);
// the caller reports a failing run.
func runQuiet(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		r.code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running install.sh: %v", err)
	}
	return r
}

// Each directory on the way to a file install.sh writes must be root's and
// writable by root alone; else it refuses, in one line naming the directory
// and the fix, and changes nothing. A world-writable sticky directory may be
// on the way when the entry below it is root's (/tmp: the fake roots live
// there).
func TestIntegrationInstallRefusesUnsafeDirectories(t *testing.T) {
	requireFakeRoot(t)
	l := layouts["debian"]
	cases := []struct {
		name  string
		setup func(t *testing.T, root string) string // returns the directory to name
	}{
		{"plugins dir writable by others", func(t *testing.T, root string) string {
			return chmod(t, root+l.plugins, 0o757)
		}},
		{"plugins dir writable by its group", func(t *testing.T, root string) string {
			return chmod(t, root+l.plugins, 0o775)
		}},
		{"plugins dir owned by nobody", func(t *testing.T, root string) string {
			return chown(t, root+l.plugins, nobody)
		}},
		{"a parent writable by others", func(t *testing.T, root string) string {
			return chmod(t, root+"/usr/lib", 0o777)
		}},
		{"a parent owned by nobody", func(t *testing.T, root string) string {
			return chown(t, root+"/usr", nobody)
		}},
		{"the root owned by nobody", func(t *testing.T, root string) string {
			return chown(t, root, nobody)
		}},
		{"a sticky parent, the entry below not root's", func(t *testing.T, root string) string {
			chmod(t, root+"/usr/lib", 0o1777)
			return chown(t, root+"/usr/lib", 0) // named: the entry below is nobody's
		}},
		{"health dir writable by others", func(t *testing.T, root string) string {
			return chmod(t, root+l.health, 0o777)
		}},
		{"manifest's parent writable by others", func(t *testing.T, root string) string {
			return chmod(t, root+"/var/lib", 0o777)
		}},
		{"drop-in dir's parent owned by nobody", func(t *testing.T, root string) string {
			return chown(t, root+"/etc/systemd/system", nobody)
		}},
	}
	plugin, alert := artifacts(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := fakeNetdata(t, "debian", debianUnit)
			bad := c.setup(t, root)
			if strings.Contains(c.name, "sticky") {
				chown(t, root+"/usr/lib/netdata", nobody)
			}
			before := testkit.Snapshot(t, fakeRoots(root)...)
			r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert)
			if r.code != 1 {
				t.Errorf("exit %d, want 1", r.code)
			}
			if lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(lines) != 1 {
				t.Errorf("want one line on stderr, got %q", r.stderr)
			}
			mustContain(t, "the refusal", r.stderr, "refusing to install: "+bad+" ", "chown root "+bad+" && chmod go-w "+bad)
			mustBeSame(t, "a refused install", before, testkit.Snapshot(t, fakeRoots(root)...), testkit.Everything)
		})
	}
	t.Run("sticky /tmp with root's entry below is fine", func(t *testing.T) {
		root := fakeNetdata(t, "debian", debianUnit)
		chmod(t, root+"/usr", 0o1777)
		if r := install(t, "--root", root, "--binary", plugin, "--alert-file", alert); r.code != 0 {
			t.Fatalf("install failed:\n%s", r)
		}
		if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
			t.Fatalf("uninstall failed:\n%s", r)
		}
	})
}

func chmod(t *testing.T, p string, mode os.FileMode) string {
	t.Helper()
	m := uint32(mode.Perm())
	if mode&0o1000 != 0 {
		m |= syscall.S_ISVTX
	}
	if err := syscall.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
	return p
}

func chown(t *testing.T, p string, uid int) string {
	t.Helper()
	if err := os.Lchown(p, uid, -1); err != nil {
		t.Fatal(err)
	}
	return p
}

// The installed file is checked after the rename: should it not be what was
// installed (here a setcap that does not set the capability, or that changes
// the file), the install fails, in one line, and the file that was there
// before comes back; with none before, none is left.
func TestIntegrationInstallRollsBackOnMismatch(t *testing.T) {
	requireFakeRoot(t)
	realSetcap, err := exec.LookPath("setcap")
	if err != nil {
		t.Skip(err)
	}
	cases := map[string]string{
		"no capability": "#!/bin/sh\nexit 0\n",
		"content":       "#!/bin/sh\nfor f; do :; done\necho tampered >>\"$f\"\nexec " + realSetcap + " \"$@\"\n",
	}
	bins := t.TempDir()
	v1, v2 := tinyPlugin(t, bins, "v1"), tinyPlugin(t, bins, "v2")
	for name, fake := range cases {
		t.Run(name, func(t *testing.T) {
			fakeBin := t.TempDir()
			writeFile(t, fakeBin+"/setcap", fake, 0o755)
			env := envWith("PATH", fakeBin+":"+os.Getenv("PATH"))
			root := fakeNetdata(t, "debian", "")
			plugins := root + layouts["debian"].plugins
			installed := plugins + "/" + pluginName
			args := []string{"--root", root, "--no-alerts", "--no-systemd", "--binary"}

			// Nothing there before: nothing left after.
			r := runScript(t, nil, env, append(args, v1)...)
			if r.code != 1 || !strings.Contains(r.stderr, installed+" did not come out as installed") ||
				strings.Count(strings.TrimRight(r.stderr, "\n"), "\n") != 0 {
				t.Errorf("want exit 1 and one line saying %s did not come out as installed:\n%s", installed, r)
			}
			if _, err := os.Lstat(installed); err == nil {
				t.Errorf("%s left behind", installed)
			}

			// v1 installed properly, then a failed upgrade: v1 is back.
			if r := install(t, append(args, v1)...); r.code != 0 {
				t.Fatalf("install failed:\n%s", r)
			}
			good := testkit.Snapshot(t, fakeRoots(plugins)...)
			r = runScript(t, nil, env, append(args, v2)...)
			if r.code != 1 || !strings.Contains(r.stderr, "rolled back") {
				t.Errorf("want exit 1, rolled back:\n%s", r)
			}
			checkPlugin(t, installed, v1)
			// The same file (inode) is back: only its ctime moved (the
			// hard link that kept it).
			mustBeSame(t, "a rolled-back upgrade", withoutCtime(good), withoutCtime(testkit.Snapshot(t, fakeRoots(plugins)...)), testkit.NotDirTimes)
			if r := install(t, "--root", root, "--uninstall"); r.code != 0 {
				t.Fatalf("uninstall failed:\n%s", r)
			}
		})
	}
}

func withoutCtime(tr tree) tree {
	out := tree{}
	for p, s := range tr {
		s.Ctime = 0
		out[p] = s
	}
	return out
}
