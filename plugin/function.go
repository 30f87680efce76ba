package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"auditplugin/netlink"
)

// The status Function: Netdata calls it on stdin, we answer on stdout with a
// table of the kernel's audit status, each field with its meaning.
const (
	functionName     = "audit-status"
	functionTimeout  = 10 // seconds Netdata waits for the answer
	functionHelp     = "Linux kernel audit status: every field with its meaning, loaded rules, audit daemon, peak backlog and last lost record"
	functionAccess   = "any"
	functionPriority = 100
	functionVersion  = 0

	// maxCalls bounds the calls served at once; more are answered 503.
	maxCalls = 4
	// ruleCountTimeout bounds the rule listing; it is also cut to half the
	// call's own timeout. A listing the kernel holds longer is reported
	// unavailable: the table is never late because of it.
	ruleCountTimeout = time.Second
)

// Function registers a Netdata Function. Netdata 1.37 reads the first three
// fields after GLOBAL (name, timeout, help) and ignores the rest; 2.x also
// reads tags, access, priority and version.
func (p *protocol) Function(name string, timeout int, help, tags, access string, priority, version int) error {
	for _, f := range []string{name, help, access} {
		if err := checkField(f); err != nil {
			return fmt.Errorf("FUNCTION: %w", err)
		}
	}
	if strings.ContainsAny(tags, "\n'\"") {
		return fmt.Errorf("FUNCTION %s: invalid tags %q", name, tags)
	}
	fmt.Fprintf(&p.buf, "FUNCTION GLOBAL \"%s\" %d \"%s\" \"%s\" \"%s\" %d %d\n", name, timeout, help, tags, access, priority, version)
	return nil
}

// lockedWriter makes each Write to Netdata whole: the chart cycle's one
// buffered write, a Function's answer and a keepalive never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// statusTracker keeps what the Function shows beyond the latest status: the
// peak backlog and the last lost record since the plugin started. The
// sampler feeds it every sample, so the Function never queries the kernel
// for the status itself.
type statusTracker struct {
	mu sync.Mutex
	s  trackerSnapshot
}

type trackerSnapshot struct {
	started     time.Time
	last        netlink.Status
	lastAt      time.Time
	seen        bool
	peakBacklog uint32
	peakAt      time.Time
	lostSince   uint64 // records lost since the plugin started (reset-aware)
	lastLostAt  time.Time
}

func newStatusTracker(now time.Time) *statusTracker {
	return &statusTracker{s: trackerSnapshot{started: now}}
}

// observe records a sample taken at at; lost is how many records were lost
// since the previous sample, which the sampler counts (counterDelta).
func (t *statusTracker) observe(st netlink.Status, at time.Time, lost uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.s
	if lost > 0 {
		s.lostSince += lost
		s.lastLostAt = at // lost between the previous sample and this one
	}
	if !s.seen || st.Backlog > s.peakBacklog {
		s.peakBacklog, s.peakAt = st.Backlog, at
	}
	s.last, s.lastAt, s.seen = st, at, true
}

func (t *statusTracker) snapshot() trackerSnapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.s
}

// functionServer reads Netdata's commands on stdin (handleLine, one call per
// line) and answers Function calls from their own goroutines, so neither a
// slow answer nor a kernel that holds queries ever delays a chart update.
type functionServer struct {
	out           io.Writer // shared with the chart cycles: a lockedWriter
	log           *stateLog
	track         *statusTracker
	countRules    func(ctx context.Context) (int, error)
	held          func() int // status queries the kernel holds asleep now
	processExists func(uint32) bool
	now           func() time.Time
	slots         chan struct{}

	mu        sync.Mutex
	hz        int           // CONFIG_HZ, 0 when unknown
	payload   *functionCall // the call whose payload is being read
	inflight  map[string]bool
	cancelled map[string]bool
	logged    map[string]bool // problems on stdin logged once each
	wg        sync.WaitGroup
}

func newFunctionServer(out io.Writer, log *stateLog, track *statusTracker) *functionServer {
	return &functionServer{
		out:           out,
		log:           log,
		track:         track,
		countRules:    netlink.CountRules,
		held:          func() int { return 0 },
		processExists: procExists,
		now:           time.Now,
		slots:         make(chan struct{}, maxCalls),
		inflight:      map[string]bool{},
		cancelled:     map[string]bool{},
		logged:        map[string]bool{},
	}
}

type functionCall struct {
	txid    string
	timeout time.Duration
	name    string // the function's name, the first word of "name params"
	params  string
	bad     string // why the call cannot be served (answered 400)
}

// handleLine handles one line Netdata wrote on stdin and reports whether it
// was QUIT. Lines may be truncated (the reader bounds them); nothing here
// holds more than one line.
func (f *functionServer) handleLine(line []byte) (quit bool) {
	text := strings.TrimRight(string(line), "\r\n")
	words := callWords(text, 8)
	if len(words) == 0 {
		return false
	}
	if words[0] == "QUIT" && len(words) == 1 {
		return true
	}
	f.mu.Lock()
	if f.payload != nil {
		// The payload is not used: read past it, keep nothing.
		if words[0] != "FUNCTION_PAYLOAD_END" {
			f.mu.Unlock()
			return false
		}
		c := f.payload
		f.payload = nil
		f.mu.Unlock()
		f.start(*c)
		return false
	}
	f.mu.Unlock()

	switch words[0] {
	case "FUNCTION":
		f.start(parseCall(words[1:]))
	case "FUNCTION_PAYLOAD":
		c := parseCall(words[1:])
		f.mu.Lock()
		f.payload = &c
		f.mu.Unlock()
	case "FUNCTION_CANCEL":
		if len(words) > 1 {
			f.mu.Lock()
			if f.inflight[words[1]] {
				f.cancelled[words[1]] = true
			}
			f.mu.Unlock()
		}
	case "FUNCTION_PROGRESS", "FUNCTION_PAYLOAD_END":
		// Progress needs no answer; a stray payload end is harmless.
	default:
		f.logOnce("unknown", "ignoring unknown command on stdin: %.80q (further ones are not logged)", text)
	}
	return false
}

// tooLong answers a Function call whose line was too long to handle (head
// is its start): Netdata gets 413 at once instead of waiting for its
// timeout. Anything else too long, a payload line included, is dropped.
func (f *functionServer) tooLong(head []byte) {
	f.mu.Lock()
	inPayload := f.payload != nil
	f.mu.Unlock()
	words := callWords(string(head), 3)
	if inPayload || len(words) < 2 || (words[0] != "FUNCTION" && words[0] != "FUNCTION_PAYLOAD") || !validTxid(words[1]) {
		return
	}
	f.reply(words[1], 413, errorBody(413, fmt.Sprintf("request longer than %d bytes", maxCommandLine)))
}

// logOnce logs a problem with what Netdata wrote the first time it occurs:
// stdin is Netdata's, and a repeated mistake must not flood its log.
func (f *functionServer) logOnce(key, format string, args ...any) {
	f.mu.Lock()
	first := !f.logged[key]
	f.logged[key] = true
	f.mu.Unlock()
	if first {
		f.log.printf(format, args...)
	}
}

// parseCall reads "txid timeout "name params" [access] [source] [content type]".
func parseCall(w []string) functionCall {
	c := functionCall{timeout: functionTimeout * time.Second}
	if len(w) > 0 {
		c.txid = w[0]
	}
	if len(w) < 3 {
		c.bad = "incomplete FUNCTION call"
		return c
	}
	if n, err := strconv.Atoi(w[1]); err == nil && n > 0 {
		c.timeout = time.Duration(n) * time.Second
	}
	c.name, c.params, _ = strings.Cut(strings.TrimSpace(w[2]), " ")
	return c
}

// start answers c on a goroutine of its own, or at once when too many calls
// are in progress or the call cannot be answered.
func (f *functionServer) start(c functionCall) {
	if c.txid == "" || !validTxid(c.txid) {
		f.logOnce("txid", "ignoring a FUNCTION call without a usable transaction id: %.80q (further ones are not logged)", c.txid)
		return
	}
	select {
	case f.slots <- struct{}{}:
	default:
		f.reply(c.txid, 503, errorBody(503, "too many audit-status calls in progress"))
		return
	}
	f.mu.Lock()
	f.inflight[c.txid] = true
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer func() { <-f.slots }()
		code, body := f.answer(c)
		f.mu.Lock()
		if f.cancelled[c.txid] {
			code, body = 499, errorBody(499, "cancelled")
		}
		delete(f.cancelled, c.txid)
		delete(f.inflight, c.txid)
		f.mu.Unlock()
		f.reply(c.txid, code, body)
	}()
}

// wait returns once every call in progress has been answered (tests).
func (f *functionServer) wait() { f.wg.Wait() }

func validTxid(s string) bool {
	return len(s) <= 128 && !strings.ContainsAny(s, " \t'\"\\")
}

func (f *functionServer) answer(c functionCall) (int, []byte) {
	switch {
	case c.bad != "":
		return 400, errorBody(400, c.bad)
	case c.name != functionName:
		return 404, errorBody(404, fmt.Sprintf("unknown function %q: audit.plugin serves %q", oneLine(truncate(c.name, 64)), functionName))
	}
	rules := f.rules(c.timeout)
	f.mu.Lock()
	hz := f.hz
	f.mu.Unlock()
	return 200, statusTable(f.track.snapshot(), rules, hz, f.processExists, f.now())
}

func (f *functionServer) setHZ(hz int) {
	f.mu.Lock()
	f.hz = hz
	f.mu.Unlock()
}

// rules returns the number of loaded rules, or why it is unknown. It never
// takes longer than ruleCountTimeout nor half the call's timeout.
func (f *functionServer) rules(callTimeout time.Duration) string {
	const held = "unavailable (kernel holding queries)"
	if f.held() > 0 {
		// Every audit sender sleeps now: do not add one.
		return held
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(ruleCountTimeout, callTimeout/2))
	defer cancel()
	n, err := f.countRules(ctx)
	switch {
	case err == nil:
		return strconv.Itoa(n)
	case errors.Is(err, netlink.ErrTimeout), errors.Is(err, netlink.ErrRulesBusy):
		return held
	}
	return "unavailable (" + oneLine(err.Error()) + ")"
}

// reply writes one whole answer; Netdata reads the body up to a line that is
// exactly FUNCTION_RESULT_END, which indented JSON never contains.
func (f *functionServer) reply(txid string, code int, body []byte) {
	var b bytes.Buffer
	expires := f.now().Add(time.Second).Unix()
	fmt.Fprintf(&b, "FUNCTION_RESULT_BEGIN %s %d application/json %d\n", txid, code, expires)
	b.Write(body)
	b.WriteString("\nFUNCTION_RESULT_END\n")
	if _, err := f.out.Write(b.Bytes()); err != nil {
		// The chart loop sees the same error on its next write and exits.
		f.log.failed("function answer", err)
	}
}

func errorBody(code int, msg string) []byte {
	b, _ := json.MarshalIndent(map[string]any{"status": code, "error_message": msg}, "", " ")
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// callWords splits a command line like Netdata's quoted-strings splitter:
// words separated by spaces or tabs, a word may be quoted with ' or " and a
// backslash escapes the next character. At most max words are returned.
func callWords(s string, max int) []string {
	var words []string
	for i := 0; i < len(s) && len(words) < max; {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			break
		}
		var w strings.Builder
		quote := byte(0)
		if s[i] == '"' || s[i] == '\'' {
			quote = s[i]
			i++
		}
		for i < len(s) {
			ch := s[i]
			if ch == '\\' && i+1 < len(s) {
				w.WriteByte(s[i+1])
				i += 2
				continue
			}
			if (quote != 0 && ch == quote) || (quote == 0 && (ch == ' ' || ch == '\t')) {
				i++
				break
			}
			w.WriteByte(ch)
			i++
		}
		words = append(words, w.String())
	}
	return words
}
