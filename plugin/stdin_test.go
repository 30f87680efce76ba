package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestReadCommands(t *testing.T) {
	long := strings.Repeat("x", maxCommandLine+1)
	fits := strings.Repeat("y", maxCommandLine)
	in := "FUNCTION 1 10 \"x\"\r\n" + long + "\n" + fits + "\n\n  QUIT  \nafter QUIT\n"
	var got []string
	var skipped []int64
	var heads []string
	readCommands(strings.NewReader(in), func(line []byte) bool {
		got = append(got, string(line))
		return strings.TrimSpace(string(line)) == "QUIT"
	}, func(head []byte, n int64) { skipped = append(skipped, n); heads = append(heads, string(head)) })
	want := []string{"FUNCTION 1 10 \"x\"", fits, "", "  QUIT  "}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %.80q, want %.80q", got, want)
	}
	if len(skipped) != 1 || skipped[0] != int64(len(long)) {
		t.Errorf("skipped %v, want one line of %d bytes", skipped, len(long))
	}
	if len(heads) != 1 || heads[0] != long[:maxCommandLine] {
		t.Errorf("the skipped line's head is not its first %d bytes", maxCommandLine)
	}

	// The last line needs no newline; the end of input just ends reading.
	got = nil
	readCommands(strings.NewReader("a\nQUIT"), func(line []byte) bool { got = append(got, string(line)); return false }, nil)
	if fmt.Sprint(got) != "[a QUIT]" {
		t.Errorf("lines %q, want [a QUIT]", got)
	}
}

// endlessLine is a reader of one n-byte line of 'x' and a newline, then QUIT.
type endlessLine struct{ n int64 }

func (r *endlessLine) Read(p []byte) (int, error) {
	switch {
	case r.n > 0:
		k := min(int64(len(p)), r.n)
		for i := range k {
			p[i] = 'x'
		}
		r.n -= k
		return int(k), nil
	case r.n == 0:
		r.n = -1
		return copy(p, "\nQUIT\n"), nil
	}
	return 0, io.EOF
}

// An overlong line is discarded chunk by chunk: reading a 64 MiB line
// allocates a small fraction of it, and the line after it still arrives.
func TestReadCommandsLongLineNotHeld(t *testing.T) {
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var got []string
	readCommands(&endlessLine{n: size}, func(line []byte) bool { got = append(got, string(line)); return false }, nil)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("reading a %d MiB line allocated %d KiB: the line was held", size>>20, alloc>>10)
	}
	if fmt.Sprint(got) != "[QUIT]" {
		t.Errorf("lines %q, want [QUIT]", got)
	}
}

// A 1 MiB line on stdin (over bufio.Scanner's 64 KiB limit) is read to the
// end, so Netdata's write completes, and QUIT after it still ends the plugin.
func TestExitOnQuitAfterLongLine(t *testing.T) {
	h := newHarness(kernel(steadyKernel(steadyPayload), 4))
	feed, exit := h.serveStdin()
	defer feed.Close()
	h.stdout.wait(t, 2, 5*time.Second)
	written := make(chan error, 1)
	go func() {
		_, err := feed.Write(append(bytes.Repeat([]byte("F"), 1<<20), '\n'))
		if err == nil {
			_, err = io.WriteString(feed, "QUIT\n")
		}
		written <- err
	}()
	select {
	case err := <-written:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("writing a 1 MiB line and QUIT to the plugin's stdin still blocked after 5 s: stdin is no longer read")
	}
	if code := waitExit(t, exit, 2*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !strings.Contains(h.stderr.String(), "ignored a 1048576-byte line on stdin") {
		t.Errorf("stderr %q does not say the long line was ignored", h.stderr)
	}
}
