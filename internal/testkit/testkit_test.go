package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseProcStatus(t *testing.T) {
	st := ParseProcStatus([]byte("Name:\taudit.plugin\nUid:\t65534\t65534\t65534\t65534\nThreads:\t7\nVmRSS:\t    5120 kB\nCapBnd:\t000001ffffffffff\nbroken line\n"))
	if st["Name"] != "audit.plugin" || st["Uid"] != "65534\t65534\t65534\t65534" {
		t.Errorf("parsed %q", st)
	}
	if n, ok := st.Int("Threads"); !ok || n != 7 {
		t.Errorf("Threads = %d, %v; want 7", n, ok)
	}
	if n, ok := st.Int("VmRSS"); !ok || n != 5120 {
		t.Errorf("VmRSS = %d, %v; want 5120", n, ok)
	}
	if n, ok := st.Hex("CapBnd"); !ok || n != 0x1ffffffffff {
		t.Errorf("CapBnd = %x, %v", n, ok)
	}
	if _, ok := st.Int("VmHWM"); ok {
		t.Error("a missing field parsed")
	}
}

func TestReadProcStatusSelf(t *testing.T) {
	st, err := ReadProcStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := st.Int("Threads"); !ok || n < 1 {
		t.Errorf("Threads = %d, %v", n, ok)
	}
	if _, err := ReadProcStatus(-1); err == nil {
		t.Error("no error for pid -1")
	}
}

func TestPollUntil(t *testing.T) {
	var n atomic.Int32
	go func() {
		time.Sleep(10 * time.Millisecond)
		n.Store(1)
	}()
	PollUntil(t, "the flag is set", 5*time.Second, func() bool { return n.Load() == 1 })
}

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	ended string
}

func (r *recorder) Fatalf(f string, a ...any) {
	r.ended = "fail: " + fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recorder) Fatal(a ...any) { r.ended = "fail: " + fmt.Sprint(a...); runtime.Goexit() }
func (r *recorder) Skipf(f string, a ...any) {
	r.ended = "skip: " + fmt.Sprintf(f, a...)
	runtime.Goexit()
}

func run(t *testing.T, f func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r.ended
}

// A missing ../shared skips outside CI and fails under CI=true.
func TestRequireSharedMissing(t *testing.T) {
	const rel = "no-such-dir-testkit"
	t.Setenv("CI", "")
	if got := run(t, func(tb testing.TB) { RequireShared(tb, rel) }); !strings.HasPrefix(got, "skip: ") || !strings.Contains(got, "../shared/"+rel) {
		t.Errorf("outside CI: %q, want a skip naming ../shared/%s", got, rel)
	}
	t.Setenv("CI", "true")
	if got := run(t, func(tb testing.TB) { RequireShared(tb, rel) }); !strings.HasPrefix(got, "fail: ") || !strings.Contains(got, "CI=true") {
		t.Errorf("under CI=true: %q, want a failure", got)
	}
}

func TestAsNobody(t *testing.T) {
	got := strings.Join(AsNobody("true"), " ")
	if got != "setpriv --reuid=65534 --regid=65534 --clear-groups true" {
		t.Errorf("AsNobody = %q", got)
	}
}

func TestBuildPlugin(t *testing.T) {
	SkipShort(t, "builds the plugin")
	bin := BuildPlugin(t, "-ldflags", "-X main.version=testkit")
	out, err := exec.Command(bin, "-version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "testkit") {
		t.Fatalf("%s -version: %v: %s", bin, err, out)
	}
}

func TestSnapshotDiff(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a", "one")
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("a", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	before := Snapshot(t, SnapRoot{Path: dir, Depth: -1})
	if s := before[filepath.Join(dir, "link")]; s.Link != "a" || s.Hash != "" {
		t.Errorf("symlink recorded as %+v", s)
	}
	if got, want := before[filepath.Join(dir, "a")].Hash, FileHash(t, filepath.Join(dir, "a")); got != want || got == "" {
		t.Errorf("hash %q, want %q", got, want)
	}
	if d := Diff(before, Snapshot(t, SnapRoot{Path: dir, Depth: -1}), Everything); len(d) != 0 {
		t.Errorf("nothing changed, Diff says %q", d)
	}
	if n := len(Snapshot(t, SnapRoot{Path: dir, Depth: 0})); n != 1 {
		t.Errorf("depth 0 recorded %d paths, want the root only", n)
	}

	// Adding and removing an entry changes only the directory's times.
	time.Sleep(10 * time.Millisecond)
	write("sub/tmp", "x")
	if err := os.Remove(filepath.Join(dir, "sub", "tmp")); err != nil {
		t.Fatal(err)
	}
	after := Snapshot(t, SnapRoot{Path: dir, Depth: -1})
	if d := Diff(before, after, Everything); len(d) == 0 || !strings.HasPrefix(d[0], "changed "+filepath.Join(dir, "sub")) {
		t.Errorf("a directory's new times: Diff(Everything) says %q", d)
	}
	if d := Diff(before, after, NotDirTimes); len(d) != 0 {
		t.Errorf("NotDirTimes: %q", d)
	}

	// Content, additions and removals always count.
	write("a", "two")
	write("b", "new")
	after = Snapshot(t, SnapRoot{Path: dir, Depth: -1})
	delete(after, filepath.Join(dir, "link"))
	want := []string{"added " + filepath.Join(dir, "b"), "changed " + filepath.Join(dir, "a"), "removed " + filepath.Join(dir, "link")}
	d := Diff(before, after, NoSizesOrTimes)
	if len(d) != 3 || d[0] != want[0] || !strings.HasPrefix(d[1], want[1]+":") || d[2] != want[2] {
		t.Errorf("NoSizesOrTimes: %q, want %q", d, want)
	}
	if ReadFile(t, filepath.Join(dir, "a")) != "two" {
		t.Error("ReadFile")
	}
}
