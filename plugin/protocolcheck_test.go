package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkStream validates plugin output the way Netdata 1.37's plugins.d
// parser reads it, and a little more strictly where a mistake would pass
// silently there. It reports every problem through t and returns what the
// stream defined and sent, for tests to look at values.
//
// Netdata 1.37 disables a plugin for a BEGIN of an unknown chart or a SET of
// an unknown dimension and kills it for an unknown keyword, without logging
// the line: these checks are the only place such a mistake shows.
func checkStream(t testing.TB, output string) *stream {
	t.Helper()
	s, errs := validateStream(output)
	for _, e := range errs {
		t.Error(e)
	}
	if len(errs) > 0 {
		t.Logf("stream checked:\n%s", output)
	}
	return s
}

// stream is what a checked plugin output defined and sent.
type stream struct {
	charts     map[string]*streamChart // by type.id
	order      []string                // chart ids in definition order
	updates    []streamUpdate          // every BEGIN…END block, in order
	disabled   bool                    // DISABLE was sent
	funcs      []string                // names of FUNCTION registrations
	results    []streamResult          // FUNCTION_RESULT_BEGIN…END answers
	keepalives int                     // PLUGIN_KEEPALIVE lines
}

type streamResult struct {
	txid, code, contentType, expires string
	body                             string
}

type streamChart struct {
	id, title, units, family, context, kind string
	priority, updateEvery                   int64
	dims                                    []streamDim
}

type streamDim struct {
	id, name, algorithm string
	mul, div            int64
	hidden              bool
}

type streamUpdate struct {
	chart  string
	since  int64             // microseconds after BEGIN; -1 when absent
	values map[string]*int64 // by dimension id; nil means a gap (SET id =)
}

func (c *streamChart) dim(id string) (streamDim, bool) {
	for _, d := range c.dims {
		if d.id == id {
			return d, true
		}
	}
	return streamDim{}, false
}

// series returns the values of one dimension over all updates of its chart
// that set it (nil entries are gaps).
func (s *stream) series(chartID, dimID string) []*int64 {
	var out []*int64
	for _, u := range s.updates {
		if u.chart != chartID {
			continue
		}
		if v, ok := u.values[dimID]; ok {
			out = append(out, v)
		}
	}
	return out
}

// Netdata 1.37 limits (plugins.d): longer lines are cut, and cut lines are
// misread.
const pluginsdLineMax = 1024

var (
	chartTypes   = map[string]bool{"line": true, "area": true, "stacked": true}
	algorithms   = map[string]bool{"absolute": true, "incremental": true, "percentage-of-absolute-row": true, "percentage-of-incremental-row": true}
	chartOptions = map[string]bool{"obsolete": true, "detail": true, "hidden": true, "store_first": true}
	dimOptions   = map[string]bool{"obsolete": true, "hidden": true, "noreset": true, "nooverflow": true}
	varScopes    = map[string]bool{"GLOBAL": true, "HOST": true, "LOCAL": true, "CHART": true}
)

// validateStream is checkStream without a testing.TB, so the checker itself
// can be tested on bad streams.
func validateStream(output string) (*stream, []string) {
	c := &checker{s: &stream{charts: map[string]*streamChart{}}, begun: map[string]bool{}}
	if output != "" && !strings.HasSuffix(output, "\n") {
		c.errs = append(c.errs, "output ends in the middle of a line (a half-written line reaches Netdata)")
	}
	for i, line := range strings.Split(strings.TrimSuffix(output, "\n"), "\n") {
		if output == "" {
			break
		}
		c.line(i+1, line)
	}
	if c.open != nil {
		c.errs = append(c.errs, fmt.Sprintf("stream ends inside BEGIN %s without END (the update is never stored)", c.open.chart))
	}
	if c.result != nil {
		c.errs = append(c.errs, fmt.Sprintf("stream ends inside the Function answer %s without FUNCTION_RESULT_END", c.result.txid))
	}
	return c.s, c.errs
}

type checker struct {
	s        *stream
	defining *streamChart    // the last CHART: DIMENSION lines apply to it
	open     *streamUpdate   // the BEGIN block in progress
	result   *streamResult   // the Function answer being read
	begun    map[string]bool // charts that had a BEGIN already
	errs     []string
	n        int
	text     string
}

func (c *checker) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf("line %d %q: %s", c.n, c.text, fmt.Sprintf(format, args...)))
}

func (c *checker) line(n int, line string) {
	c.n, c.text = n, line
	if len(line)+1 > pluginsdLineMax {
		c.fail("longer than Netdata's %d-byte line buffer", pluginsdLineMax)
	}
	if c.result != nil {
		// Netdata takes every line up to FUNCTION_RESULT_END as the body.
		if line == "FUNCTION_RESULT_END" {
			c.s.results = append(c.s.results, *c.result)
			c.result = nil
		} else {
			c.result.body += line + "\n"
		}
		return
	}
	words, err := splitWords(line)
	if err != nil {
		c.fail("%v", err)
	}
	if len(words) == 0 {
		return // Netdata skips empty lines
	}
	if c.s.disabled {
		c.fail("after DISABLE (Netdata has stopped reading)")
		return
	}
	switch kw := words[0]; kw {
	case "CHART":
		c.chart(words)
	case "DIMENSION":
		c.dimension(words)
	case "BEGIN":
		c.begin(words)
	case "SET":
		c.set(words)
	case "END":
		if c.open == nil {
			c.fail("END without BEGIN")
			return
		}
		c.s.updates = append(c.s.updates, *c.open)
		c.open = nil
	case "FLUSH":
		c.open = nil // discards the open BEGIN block
	case "DISABLE":
		c.s.disabled = true
	case "VARIABLE":
		c.variable(words)
	case "FUNCTION":
		c.function(words)
	case "FUNCTION_RESULT_BEGIN":
		if c.open != nil {
			c.fail("Function answer inside BEGIN %s (interleaved with a chart update)", c.open.chart)
		}
		if len(words) != 5 || !regexp.MustCompile(`^[1-5][0-9][0-9]$`).MatchString(words[2]) ||
			words[3] == "" || !regexp.MustCompile(`^[0-9]+$`).MatchString(words[4]) {
			c.fail("want FUNCTION_RESULT_BEGIN txid code content_type expires")
		}
		c.result = &streamResult{txid: word(words, 1), code: word(words, 2), contentType: word(words, 3), expires: word(words, 4)}
	case "PLUGIN_KEEPALIVE":
		// Netdata 2.x only: 1.37 kills and restarts a plugin that sends it.
		c.s.keepalives++
	case "BEGIN2", "SET2", "END2":
		c.fail("%s is streaming-only: Netdata kills a plugin that sends it", kw)
	default:
		c.fail("unknown keyword %q: Netdata 1.37 kills and restarts the plugin", kw)
	}
}

// splitWords splits a line like Netdata's pluginsd_split_words: words are
// separated by spaces, tabs and '=', and a word may be quoted with ' or ".
func splitWords(line string) ([]string, error) {
	isSep := func(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '=' }
	var words []string
	for i := 0; ; {
		for i < len(line) && isSep(line[i]) {
			i++
		}
		if i >= len(line) {
			return words, nil
		}
		if q := line[i]; q == '\'' || q == '"' {
			end := strings.IndexByte(line[i+1:], q)
			if end < 0 {
				return append(words, line[i+1:]), fmt.Errorf("unterminated %c quote", q)
			}
			words = append(words, line[i+1:i+1+end])
			i += end + 2
			continue
		}
		j := i
		for j < len(line) && !isSep(line[j]) {
			j++
		}
		words = append(words, line[i:j])
		i = j
	}
}

// function checks a registration as 1.37 and 2.x read it:
// FUNCTION [GLOBAL] name timeout help [tags access priority version].
func (c *checker) function(words []string) {
	w := words[1:]
	if len(w) > 0 && w[0] == "GLOBAL" {
		w = w[1:]
	} else {
		c.fail("FUNCTION without GLOBAL: 1.37 ties it to the last chart")
	}
	if len(w) < 3 || w[0] == "" || w[2] == "" {
		c.fail("want FUNCTION GLOBAL name timeout help (1.37 ignores the line otherwise)")
		return
	}
	if n, err := parseInt(w[1]); err != nil || n <= 0 {
		c.fail("timeout %q is not a positive integer", w[1])
	}
	if len(w) >= 5 && w[4] != "any" && w[4] != "member" && w[4] != "admin" {
		c.fail("access %q is not any, member or admin", w[4])
	}
	c.s.funcs = append(c.s.funcs, w[0])
}

func word(words []string, i int) string {
	if i < len(words) {
		return words[i]
	}
	return ""
}

// parseInt reads an integer as Netdata's strtoll(value, NULL, 0) would, and
// rejects what it would read differently from what we meant: a leading 0 is
// octal there, and trailing garbage is silently dropped.
func parseInt(v string) (int64, error) {
	digits := strings.TrimPrefix(v, "-")
	if len(digits) > 1 && digits[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero (Netdata reads it as octal)", v)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a 64-bit signed decimal integer", v)
	}
	return n, nil
}

func (c *checker) chart(words []string) {
	if c.open != nil {
		c.fail("CHART inside the BEGIN block of %s", c.open.chart)
	}
	full := word(words, 1)
	typ, id, ok := strings.Cut(full, ".")
	if !ok || typ == "" || id == "" {
		c.fail("chart id %q is not type.id", full)
		return
	}
	if len(words) < 5 {
		c.fail("CHART needs at least type.id, name, title and units")
	}
	ch := &streamChart{
		id: full, title: word(words, 3), units: word(words, 4), family: word(words, 5),
		context: word(words, 6), kind: word(words, 7), updateEvery: 1,
	}
	if ch.kind != "" && !chartTypes[ch.kind] {
		c.fail("chart type %q is not line, area or stacked", ch.kind)
	}
	if v := word(words, 8); v != "" {
		n, err := parseInt(v)
		if err != nil {
			c.fail("priority: %v", err)
		}
		ch.priority = n
	}
	if v := word(words, 9); v != "" {
		n, err := parseInt(v)
		if err != nil || n < 1 {
			c.fail("update_every %q is not a positive integer", v)
		}
		ch.updateEvery = n
	}
	for _, o := range strings.Fields(word(words, 10)) {
		if !chartOptions[o] {
			c.fail("unknown chart option %q", o)
		}
	}
	if old, ok := c.s.charts[full]; ok {
		ch.dims = old.dims // a redefinition keeps the dimensions
	} else {
		c.s.order = append(c.s.order, full)
	}
	c.s.charts[full] = ch
	c.defining = ch
}

func (c *checker) dimension(words []string) {
	if c.defining == nil {
		c.fail("DIMENSION before any CHART")
		return
	}
	if c.open != nil {
		c.fail("DIMENSION inside the BEGIN block of %s", c.open.chart)
	}
	d := streamDim{id: word(words, 1), name: word(words, 2), algorithm: word(words, 3), mul: 1, div: 1}
	if d.id == "" {
		c.fail("DIMENSION without an id")
		return
	}
	if d.algorithm == "" {
		d.algorithm = "absolute"
	}
	if !algorithms[d.algorithm] {
		c.fail("unknown algorithm %q", d.algorithm)
	}
	for i, p := range []*int64{&d.mul, &d.div} {
		v := word(words, 4+i)
		if v == "" {
			continue
		}
		n, err := parseInt(v)
		if err != nil {
			c.fail("%s: %v", []string{"multiplier", "divisor"}[i], err)
			continue
		}
		if n == 0 { // Netdata turns 0 into 1 silently: surely not what was meant
			c.fail("%s is 0", []string{"multiplier", "divisor"}[i])
		}
		*p = n
	}
	for _, o := range strings.Fields(word(words, 6)) {
		if !dimOptions[o] {
			c.fail("unknown dimension option %q", o)
		}
		d.hidden = d.hidden || o == "hidden"
	}
	for i, old := range c.defining.dims {
		if old.id == d.id {
			c.defining.dims[i] = d
			return
		}
	}
	c.defining.dims = append(c.defining.dims, d)
}

func (c *checker) begin(words []string) {
	if c.open != nil {
		c.fail("BEGIN before the END of %s (that update is lost)", c.open.chart)
		c.open = nil
	}
	id := word(words, 1)
	if _, ok := c.s.charts[id]; !ok {
		c.fail("BEGIN for chart %q that was never defined: Netdata 1.37 disables the plugin", id)
		return
	}
	u := &streamUpdate{chart: id, since: -1, values: map[string]*int64{}}
	us := word(words, 2)
	switch {
	case !c.begun[id] && us != "":
		c.fail("the first BEGIN of %s carries microseconds", id)
	case c.begun[id] && us == "":
		c.fail("BEGIN of %s without microseconds since the last one", id)
	}
	if us != "" {
		n, err := parseInt(us)
		if err != nil || n <= 0 {
			c.fail("microseconds %q is not a positive integer", us)
		}
		u.since = n
	}
	c.begun[id] = true
	c.open = u
}

func (c *checker) set(words []string) {
	if c.open == nil {
		c.fail("SET outside a BEGIN block: Netdata 1.37 disables the plugin")
		return
	}
	id := word(words, 1)
	if _, ok := c.s.charts[c.open.chart].dim(id); !ok {
		c.fail("SET of %q, not a dimension of %s: Netdata 1.37 disables the plugin", id, c.open.chart)
		return
	}
	if _, dup := c.open.values[id]; dup {
		c.fail("second SET of %s in one update", id)
	}
	if len(words) > 3 {
		c.fail("extra words after the value")
	}
	v := word(words, 2)
	if v == "" {
		c.open.values[id] = nil // a gap
		return
	}
	n, err := parseInt(v)
	if err != nil {
		c.fail("%v", err)
		return
	}
	c.open.values[id] = &n
}

func (c *checker) variable(words []string) {
	i := 1
	scope := word(words, 1)
	if varScopes[scope] {
		i++
		if (scope == "CHART" || scope == "LOCAL") && c.open == nil {
			c.fail("a %s VARIABLE outside a BEGIN block has no chart", scope)
		}
	}
	name, value := word(words, i), word(words, i+1)
	if name == "" || value == "" {
		c.fail("VARIABLE needs a name and a value")
		return
	}
	if _, err := strconv.ParseFloat(value, 64); err != nil {
		c.fail("VARIABLE value %q is not a number", value)
	}
}

// The checker is only worth something if it catches what Netdata rejects.
func TestCheckStreamRejects(t *testing.T) {
	const defs = "CHART a.b '' 'T' 'u' 'f' a.b line 1 1 '' 'p' 'm'\nDIMENSION x x absolute 1 1 ''\n"
	cases := []struct{ name, stream, want string }{
		{"unknown keyword", defs + "HELLO\n", "unknown keyword"},
		{"BEGIN2", defs + "BEGIN2 a.b\n", "streaming-only"},
		{"SET2", defs + "BEGIN a.b\nSET2 x = 1\nEND\n", "streaming-only"},
		{"BEGIN undefined chart", defs + "BEGIN a.c\nEND\n", "never defined"},
		{"SET unknown dim", defs + "BEGIN a.b\nSET y = 1\nEND\n", "not a dimension"},
		{"SET outside BEGIN", defs + "SET x = 1\n", "outside a BEGIN"},
		{"END without BEGIN", defs + "END\n", "END without BEGIN"},
		{"missing END", defs + "BEGIN a.b\nSET x = 1\n", "without END"},
		{"BEGIN inside BEGIN", defs + "BEGIN a.b\nBEGIN a.b 5\nEND\n", "before the END"},
		{"first BEGIN with us", defs + "BEGIN a.b 1000\nEND\n", "first BEGIN"},
		{"later BEGIN without us", defs + "BEGIN a.b\nEND\nBEGIN a.b\nEND\n", "without microseconds"},
		{"float value", defs + "BEGIN a.b\nSET x = 1.5\nEND\n", "64-bit"},
		{"too big", defs + "BEGIN a.b\nSET x = 9223372036854775808\nEND\n", "64-bit"},
		{"octal", defs + "BEGIN a.b\nSET x = 010\nEND\n", "octal"},
		{"bad chart type", "CHART a.b '' 'T' 'u' 'f' a.b pie 1 1\n", "chart type"},
		{"no dot", "CHART ab '' 'T' 'u'\n", "type.id"},
		{"bad algorithm", "CHART a.b '' 'T' 'u'\nDIMENSION x x sum 1 1\n", "algorithm"},
		{"divisor 0", "CHART a.b '' 'T' 'u'\nDIMENSION x x absolute 1 0\n", "divisor is 0"},
		{"DIMENSION first", "DIMENSION x\n", "before any CHART"},
		{"after DISABLE", defs + "DISABLE\nBEGIN a.b\nEND\n", "after DISABLE"},
		{"half line", defs + "BEGIN a.b\nSET x = 1\nEND", "middle of a line"},
		{"unterminated quote", "CHART a.b '' 'T u\n", "unterminated"},
		{"long line", "CHART a.b '' '" + strings.Repeat("t", 1100) + "' 'u'\n", "line buffer"},
		{"bad variable", "VARIABLE HOST x = abc\n", "not a number"},
		{"function without global", "FUNCTION \"f\" 10 \"help\"\n", "without GLOBAL"},
		{"function without help", "FUNCTION GLOBAL \"f\" 10\n", "want FUNCTION GLOBAL"},
		{"function bad access", "FUNCTION GLOBAL \"f\" 10 \"h\" \"top\" \"everyone\" 100 0\n", "access"},
		{"answer without end", "FUNCTION_RESULT_BEGIN t1 200 application/json 1\n{}\n", "without FUNCTION_RESULT_END"},
		{"answer inside BEGIN", defs + "BEGIN a.b\nFUNCTION_RESULT_BEGIN t1 200 application/json 1\n{}\nFUNCTION_RESULT_END\nEND\n", "interleaved"},
		{"answer bad header", "FUNCTION_RESULT_BEGIN t1 ok application/json\nFUNCTION_RESULT_END\n", "want FUNCTION_RESULT_BEGIN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := validateStream(tc.stream)
			if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
				t.Errorf("errors %q, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestCheckStreamAccepts(t *testing.T) {
	const ok = "CHART a.b '' 'T' 'u' 'f' a.b line 1 1 '' 'p' 'm'\n" +
		"DIMENSION x 'x name' incremental -1 1000 'hidden'\n" +
		"DIMENSION y\n" +
		"VARIABLE HOST limit = 8.5\n" +
		"BEGIN a.b\nSET x = -5\nSET y =\nEND\n" +
		"\n" +
		"BEGIN a.b 1000000\nSET x = 9223372036854775807\nFLUSH\n" +
		"BEGIN a.b 999\nSET y = 0\nEND\n" +
		"DISABLE\n"
	s, errs := validateStream(ok)
	if len(errs) > 0 {
		t.Fatalf("valid stream rejected: %q", errs)
	}
	if !s.disabled || len(s.updates) != 2 {
		t.Fatalf("got disabled=%v, %d updates; want true, 2", s.disabled, len(s.updates))
	}
	d, _ := s.charts["a.b"].dim("x")
	if d.name != "x name" || d.algorithm != "incremental" || d.mul != -1 || d.div != 1000 || !d.hidden {
		t.Errorf("dimension x parsed as %+v", d)
	}
	if v := s.updates[0].values["y"]; v != nil {
		t.Errorf("SET y = parsed as %d, want a gap", *v)
	}
	if s.updates[1].since != 999 || *s.updates[1].values["y"] != 0 {
		t.Errorf("second update %+v", s.updates[1])
	}
}

func TestCheckStreamAcceptsFunctions(t *testing.T) {
	const ok = "CHART a.b '' 'T' 'u' 'f' a.b line 1 1 '' 'p' 'm'\nDIMENSION x\n" +
		"FUNCTION GLOBAL \"f\" 10 \"help text\" \"top\" \"any\" 100 0\n" +
		"PLUGIN_KEEPALIVE\n" +
		"FUNCTION_RESULT_BEGIN tx1 200 application/json 1700000000\n{\n \"status\": 200\n}\nFUNCTION_RESULT_END\n" +
		"BEGIN a.b\nSET x = 1\nEND\n"
	s, errs := validateStream(ok)
	if len(errs) > 0 {
		t.Fatalf("valid stream rejected: %q", errs)
	}
	if !slices.Equal(s.funcs, []string{"f"}) || s.keepalives != 1 || len(s.results) != 1 || len(s.updates) != 1 {
		t.Fatalf("funcs %q keepalives %d results %+v updates %d", s.funcs, s.keepalives, s.results, len(s.updates))
	}
	if r := s.results[0]; r.txid != "tx1" || r.code != "200" || r.body != "{\n \"status\": 200\n}\n" {
		t.Errorf("result %+v", r)
	}
}
