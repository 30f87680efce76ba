package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// stateLog writes to stderr (Netdata's error log) only when a state changes,
// never once per cycle.
type stateLog struct {
	mu      sync.Mutex
	out     io.Writer
	failing map[string]string // what → last error text
}

func newStateLog(out io.Writer) *stateLog {
	return &stateLog{out: out, failing: map[string]string{}}
}

func (l *stateLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.out, "audit.plugin: "+format+"\n", args...)
}

// failed logs err for what unless the same error was logged last time.
func (l *stateLog) failed(what string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing[what] == err.Error() {
		return
	}
	l.failing[what] = err.Error()
	fmt.Fprintf(l.out, "audit.plugin: %s failing: %v (will retry)\n", what, err)
}

// ok logs the recovery of what, if it was failing.
func (l *stateLog) ok(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, was := l.failing[what]; !was {
		return
	}
	delete(l.failing, what)
	fmt.Fprintf(l.out, "audit.plugin: %s recovered\n", what)
}

// oneLine escapes control characters (a newline in an argument or a path)
// so a message stays one line in Netdata's log.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
