package metadatatest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dlclark/regexp2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"auditplugin/internal/testkit"
	"auditplugin/netlink"
)

// metadata is the part of metadata.yaml the tests compare.
type metadata struct {
	PluginName string `yaml:"plugin_name"`
	Modules    []struct {
		Meta struct {
			PluginName string `yaml:"plugin_name"`
			ModuleName string `yaml:"module_name"`
		} `yaml:"meta"`
		Setup struct {
			Configuration struct {
				File struct {
					Name    string `yaml:"name"`
					Section string `yaml:"section_name"`
				} `yaml:"file"`
				Options struct {
					List []struct {
						Name    string `yaml:"name"`
						Default any    `yaml:"default_value"`
					} `yaml:"list"`
				} `yaml:"options"`
			} `yaml:"configuration"`
		} `yaml:"setup"`
		Alerts []struct {
			Name   string `yaml:"name"`
			Link   string `yaml:"link"`
			Metric string `yaml:"metric"`
			Info   string `yaml:"info"`
		} `yaml:"alerts"`
		Metrics struct {
			Availability []string `yaml:"availability"`
			Scopes       []struct {
				Name    string   `yaml:"name"`
				Metrics []metric `yaml:"metrics"`
			} `yaml:"scopes"`
		} `yaml:"metrics"`
	} `yaml:"modules"`
}

type metric struct {
	Name         string   `yaml:"name"`
	Description  string   `yaml:"description"`
	Unit         string   `yaml:"unit"`
	ChartType    string   `yaml:"chart_type"`
	Availability []string `yaml:"availability"`
	Dimensions   []struct {
		Name string `yaml:"name"`
	} `yaml:"dimensions"`
}

func repoRoot(t *testing.T) string { return testkit.Root(t) }

func readMetadata(t *testing.T) (*metadata, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "metadata.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m metadata
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("metadata.yaml: %v", err)
	}
	if len(m.Modules) != 1 {
		t.Fatalf("metadata.yaml has %d modules, want 1", len(m.Modules))
	}
	return &m, b
}

// TestMetadataSchema validates metadata.yaml against Netdata's integration
// schema (draft-07; collector.json refers to ./shared.json).
func TestMetadataSchema(t *testing.T) {
	// Netdata's integration schemas are not part of this repository.
	schemaDir := filepath.Dir(testkit.RequireShared(t, "netdata-schemas/collector.json"))
	_, raw := readMetadata(t)
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	// YAML to the JSON data model the validator expects.
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("metadata.yaml is not representable as JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	// Netdata's own format: parentheses must balance.
	c.RegisterFormat(&jsonschema.Format{Name: "netdata-balanced-parentheses", Validate: balancedParentheses})
	// The schema's patterns use lookaheads (ECMAScript), which Go's regexp lacks.
	c.UseRegexpEngine(ecmaRegexp)
	sch, err := c.Compile(filepath.Join(schemaDir, "collector.json"))
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Errorf("metadata.yaml does not follow %s:\n%v", filepath.Join(schemaDir, "collector.json"), err)
	}
	// The validator does reject: without its required alerts list, the same
	// document fails.
	broken, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	delete(broken.(map[string]any)["modules"].([]any)[0].(map[string]any), "alerts")
	if err := sch.Validate(broken); err == nil {
		t.Error("the schema accepts metadata.yaml without its alerts: is it the collector schema?")
	}

	// The schema leaves category ids free; Netdata's categories.yaml has these.
	var cats struct {
		Modules []struct {
			Meta struct {
				Instance struct {
					Categories []string `yaml:"categories"`
				} `yaml:"monitored_instance"`
			} `yaml:"meta"`
		} `yaml:"modules"`
	}
	if err := yaml.Unmarshal(raw, &cats); err != nil {
		t.Fatal(err)
	}
	for _, c := range cats.Modules[0].Meta.Instance.Categories {
		if c != "data-collection.linux-systems.kernel-metrics" && c != "data-collection.security-systems" {
			t.Errorf("category %q is not one of Netdata's", c)
		}
	}
}

// ecmaRegexp compiles the schema's patterns as JSON Schema means them:
// ECMAScript regular expressions.
func ecmaRegexp(s string) (jsonschema.Regexp, error) {
	re, err := regexp2.Compile(s, regexp2.ECMAScript)
	if err != nil {
		return nil, err
	}
	return ecmaRe{re}, nil
}

type ecmaRe struct{ re *regexp2.Regexp }

func (r ecmaRe) MatchString(s string) bool {
	ok, err := r.re.MatchString(s)
	return err == nil && ok
}

func (r ecmaRe) String() string { return r.re.String() }

func balancedParentheses(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	depth := 0
	for _, r := range s {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return errors.New("unbalanced parentheses")
			}
		}
	}
	if depth != 0 {
		return errors.New("unbalanced parentheses")
	}
	return nil
}

// chartDef is a chart as the plugin defines it on its stdout.
type chartDef struct {
	id, title, units, context, kind string
	dims                            []dimDef
}

type dimDef struct{ id, name string }

var (
	buildOnce sync.Once
	pluginBin string
	buildErr  string
)

// plugin builds the plugin once for this test binary.
func plugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// A sub-test's TempDir would vanish with it: keep the binary in a
		// directory of its own for the life of the test binary.
		dir, err := os.MkdirTemp("", "auditplugin-metadatatest-")
		if err != nil {
			buildErr = err.Error()
			return
		}
		// -tags replay: the test build, whose -replay feeds it a status.
		bin, err := testkit.BuildPluginIn(dir, "-tags", "replay")
		if err != nil {
			buildErr = err.Error()
			return
		}
		pluginBin = bin
	})
	if buildErr != "" {
		t.Fatalf("go build ./plugin: %s", buildErr)
	}
	return pluginBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBin != "" {
		os.RemoveAll(filepath.Dir(pluginBin))
	}
	os.Exit(code)
}

// replyFields are the optional fields of an AUDIT_GET reply of each size.
var replyFields = map[int]netlink.Field{
	32: 0,
	40: netlink.FieldFeatureBitmap | netlink.FieldBacklogWaitTime,
	44: netlink.FieldFeatureBitmap | netlink.FieldBacklogWaitTime | netlink.FieldBacklogWaitTimeActual,
	48: netlink.FieldFeatureBitmap | netlink.FieldBacklogWaitTime | netlink.FieldBacklogWaitTimeActual | netlink.FieldBacklogMaxDepth,
}

// pluginCharts runs the built plugin with -replay of one status reply of
// replyBytes and returns the charts it defines, in order.
func pluginCharts(t *testing.T, replyBytes int) []chartDef {
	t.Helper()
	st := netlink.Status{
		Enabled: netlink.Enabled, Failure: netlink.FailurePrintk, PID: 1, BacklogLimit: 8192,
		Backlog: 10, BacklogWaitTime: 15000, Fields: replyFields[replyBytes], ReplyBytes: replyBytes,
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	replay := filepath.Join(t.TempDir(), "status.jsonl")
	if err := os.WriteFile(replay, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, plugin(t), "1", "-replay", replay)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var charts []chartDef
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "CHART":
			if len(f) < 13 {
				t.Fatalf("short CHART line: %q", sc.Text())
			}
			charts = append(charts, chartDef{id: f[1], title: f[3], units: f[4], context: f[6], kind: f[7]})
		case "DIMENSION":
			if len(charts) == 0 || len(f) < 3 {
				t.Fatalf("DIMENSION line %q", sc.Text())
			}
			c := &charts[len(charts)-1]
			c.dims = append(c.dims, dimDef{id: f[1], name: f[2]})
		case "BEGIN":
			// Definitions are complete: the first update begins.
			if len(charts) == 0 {
				t.Fatal("the plugin defined no chart")
			}
			return charts
		case "DISABLE":
			t.Fatalf("the plugin disabled itself: %s", stderr.String())
		}
	}
	t.Fatalf("the plugin ended before its first update (%v): %s", sc.Err(), stderr.String())
	return nil
}

// fields splits a plugins.d line: words, or single-quoted strings.
func fields(line string) []string {
	var out []string
	for i := 0; i < len(line); {
		switch {
		case line[i] == ' ':
			i++
		case line[i] == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return append(out, line[i+1:])
			}
			out = append(out, line[i+1:i+1+j])
			i += j + 2
		default:
			j := strings.IndexByte(line[i:], ' ')
			if j < 0 {
				return append(out, line[i:])
			}
			out = append(out, line[i:i+j])
			i += j
		}
	}
	return out
}

// availableWith maps metadata availability conditions to the reply sizes
// that satisfy them.
var availableWith = map[string]int{
	"Linux 3.14+":                    40,
	"Linux 5.9+":                     44,
	"kernels with backlog_max_depth": 48,
}

// TestMetadataMatchesPluginCharts runs the built plugin on replayed status
// replies of each kernel generation and compares the charts it defines with
// metadata.yaml: contexts, titles, units, chart types, dimension names, and
// which charts each reply size has.
func TestMetadataMatchesPluginCharts(t *testing.T) {
	m, _ := readMetadata(t)
	mod := m.Modules[0]
	if m.PluginName != "audit.plugin" || mod.Meta.PluginName != "audit.plugin" || mod.Meta.ModuleName != "audit" {
		t.Errorf("plugin %q / %q module %q", m.PluginName, mod.Meta.PluginName, mod.Meta.ModuleName)
	}
	if len(mod.Metrics.Scopes) != 1 {
		t.Fatalf("%d metric scopes, want 1 (global)", len(mod.Metrics.Scopes))
	}
	for _, cond := range mod.Metrics.Availability {
		if _, ok := availableWith[cond]; !ok {
			t.Errorf("availability %q has no reply size in this test", cond)
		}
	}
	metrics := mod.Metrics.Scopes[0].Metrics
	for _, size := range []int{32, 40, 44, 48} {
		t.Run(strconv.Itoa(size)+"-byte status", func(t *testing.T) {
			got := pluginCharts(t, size)
			var want []string
			for _, mm := range metrics {
				ok := true
				for _, cond := range mm.Availability {
					if need, known := availableWith[cond]; !known || size < need {
						ok = false
					}
				}
				if ok {
					want = append(want, mm.Name)
				}
			}
			var have []string
			for _, c := range got {
				have = append(have, c.context)
			}
			if !slices.Equal(have, want) {
				t.Errorf("the plugin defines %v,\nmetadata.yaml lists %v", have, want)
			}
			for _, c := range got {
				if c.id != c.context {
					t.Errorf("chart %s has context %s: the metadata names metrics by context", c.id, c.context)
				}
				i := slices.IndexFunc(metrics, func(mm metric) bool { return mm.Name == c.context })
				if i < 0 {
					continue
				}
				mm := metrics[i]
				units := c.units
				// Without CONFIG_HZ the plugin charts jiffies: the metadata
				// documents the usual seconds.
				units = strings.Replace(units, "jiffies", "seconds", 1)
				if mm.Description != c.title || mm.Unit != units || mm.ChartType != c.kind {
					t.Errorf("%s: metadata %q %q %q, plugin %q %q %q", c.context, mm.Description, mm.Unit, mm.ChartType, c.title, c.units, c.kind)
				}
				var dims, mdims []string
				for _, d := range c.dims {
					dims = append(dims, d.name)
				}
				for _, d := range mm.Dimensions {
					mdims = append(mdims, d.Name)
				}
				if !slices.Equal(dims, mdims) {
					t.Errorf("%s: the plugin's dimensions %v, metadata.yaml's %v", c.context, dims, mdims)
				}
			}
		})
	}
}

// flagLine is a flag in `audit.plugin -h`: "  -name type" or "  -name".
var flagLine = regexp.MustCompile(`^  (-[a-z-]+)`)
var defaultValue = regexp.MustCompile(`\(default ([^)]*)\)`)

// TestMetadataOptions compares the options in metadata.yaml with the flags
// the built plugin accepts (its -h) and their defaults.
func TestMetadataOptions(t *testing.T) {
	m, _ := readMetadata(t)
	cfg := m.Modules[0].Setup.Configuration
	if cfg.File.Name != "netdata.conf" || cfg.File.Section != "[plugin:audit]" {
		t.Errorf("configuration file %q section %q", cfg.File.Name, cfg.File.Section)
	}
	documented := map[string]string{}
	var order []string
	for _, o := range cfg.Options.List {
		documented[o.Name] = strings.TrimSpace(stringOf(o.Default))
		order = append(order, o.Name)
	}

	out, _ := exec.Command(plugin(t), "-h").CombinedOutput()
	flags := map[string]string{}
	lines := strings.Split(string(out), "\n")
	for i, l := range lines {
		f := flagLine.FindStringSubmatch(l)
		if f == nil {
			continue
		}
		def := ""
		if i+1 < len(lines) {
			if strings.Contains(lines[i+1], "testing only") {
				continue // a flag of the test build (-tags replay), not in the shipped binary
			}
			if d := defaultValue.FindStringSubmatch(lines[i+1]); d != nil {
				def = d[1]
			}
		}
		flags[f[1]] = def
	}
	if len(flags) == 0 {
		t.Fatalf("no flags in audit.plugin -h:\n%s", out)
	}
	delete(flags, "-version") // prints the version; not a configuration option
	flags["update every"] = "1"
	for name, def := range flags {
		d, ok := documented[name]
		if !ok {
			t.Errorf("option %s (default %q) is not in metadata.yaml", name, def)
			continue
		}
		if d != def {
			t.Errorf("option %s: metadata.yaml's default %q, the plugin's %q", name, d, def)
		}
	}
	for _, name := range order {
		if _, ok := flags[name]; !ok {
			t.Errorf("metadata.yaml documents option %s, which the plugin does not have", name)
		}
	}
}

func stringOf(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// alertDef is one template of the health file, keys as written.
type alertDef struct {
	name string
	line int
	keys map[string]string
}

// healthKeys are the keys current Netdata accepts that 1.37 accepts too, and
// `summary` (1.43+), which 1.37 logs as an unknown key and ignores (the e2e
// tests accept exactly that message on 1.37).
var healthKeys = []string{"template", "alarm", "on", "class", "type", "component", "os", "hosts",
	"lookup", "calc", "every", "units", "warn", "crit", "delay", "repeat", "summary", "info", "to", "options"}

// lookupDims matches "of DIM[,DIM...]" at the end of a lookup line.
var lookupDims = regexp.MustCompile(`\bof\s+(\S+)\s*$`)

// variable matches $name and ${name} in expressions.
var variable = regexp.MustCompile(`\$\{([^}]+)\}|\$([A-Za-z0-9_.]+)`)

// specialVars are Netdata's own variables in an alert expression.
var specialVars = []string{"this", "status", "now", "after", "before", "update_every", "last_collected_t",
	"green", "red", "REMOVED", "UNINITIALIZED", "UNDEFINED", "CLEAR", "WARNING", "CRITICAL"}

// checkHealth parses a Netdata health file ("key: value" lines, a trailing
// backslash continues a value, # starts a comment) and returns its alerts
// and what is wrong with them for the plugin's charts: keys 1.37 does not
// accept, alarms instead of templates, names that could clash with
// Netdata's stock audit alerts, contexts, looked-up dimensions and
// ${chart.dimension} references that do not exist (Netdata 1.37 evaluates an
// unknown variable as false, silently), and local $variables that are not
// dimensions of the alert's own chart (Netdata would also look them up in
// the chart's family, by accident).
func checkHealth(text string, charts map[string]chartDef) (alerts []alertDef, problems []string) {
	bad := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
	var cur *alertDef
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		start := i + 1
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			bad(start, "not a key: value line: %q", line)
			continue
		}
		key, val := strings.TrimSpace(k), strings.Join(strings.Fields(v), " ")
		if key == "template" || key == "alarm" {
			alerts = append(alerts, alertDef{name: val, line: start, keys: map[string]string{}})
			cur = &alerts[len(alerts)-1]
		}
		if cur == nil {
			bad(start, "%s before the first template", key)
			continue
		}
		if !slices.Contains(healthKeys, key) {
			bad(start, "%s: key %q is not accepted by Netdata 1.37", cur.name, key)
		}
		if _, dup := cur.keys[key]; dup {
			bad(start, "%s: key %s repeated", cur.name, key)
		}
		cur.keys[key] = val
	}

	hasDim := func(c chartDef, dim string) bool {
		return slices.ContainsFunc(c.dims, func(d dimDef) bool { return d.name == dim || d.id == dim })
	}
	for _, a := range alerts {
		if !strings.HasPrefix(a.name, "linux_audit_") {
			bad(a.line, "%s: alert names must start with linux_audit_ (Netdata's own audit alerts are audit_*)", a.name)
		}
		if _, ok := a.keys["template"]; !ok {
			bad(a.line, "%s: an alarm, not a template", a.name)
		}
		for _, k := range []string{"on", "every", "summary", "info", "units", "warn", "class", "type", "component", "to"} {
			if a.keys[k] == "" {
				bad(a.line, "%s: no %s", a.name, k)
			}
		}
		if strings.Contains(a.keys["info"], "$") {
			bad(a.line, "%s: info has a $, which 1.37 shows as it is", a.name)
		}
		if strings.Contains(a.keys["summary"], "$") {
			bad(a.line, "%s: summary has a $ (a variable is resolved only on 2.x)", a.name)
		}
		c, ok := charts[a.keys["on"]]
		if !ok {
			bad(a.line, "%s: on %q is not a context the plugin defines", a.name, a.keys["on"])
			continue
		}
		if l := a.keys["lookup"]; l != "" {
			m := lookupDims.FindStringSubmatch(l)
			if m == nil {
				bad(a.line, "%s: lookup %q names no dimension", a.name, l)
			} else {
				for _, d := range strings.Split(m[1], ",") {
					if !hasDim(c, d) {
						bad(a.line, "%s: lookup dimension %q is not on %s", a.name, d, c.context)
					}
				}
			}
		}
		for _, k := range []string{"calc", "warn", "crit"} {
			for _, m := range variable.FindAllStringSubmatch(a.keys[k], -1) {
				v := m[1] + m[2]
				if chartID, dim, cross := cutLast(v, "."); cross {
					if other, ok := charts[chartID]; !ok {
						bad(a.line, "%s: %s: $%s: no chart %s", a.name, k, v, chartID)
					} else if !hasDim(other, dim) {
						bad(a.line, "%s: %s: $%s: chart %s has no dimension %s", a.name, k, v, chartID, dim)
					}
					continue
				}
				if !slices.Contains(specialVars, v) && !hasDim(c, v) {
					bad(a.line, "%s: %s: $%s is neither Netdata's nor a dimension of %s", a.name, k, v, c.context)
				}
			}
		}
	}
	return alerts, problems
}

// allCharts are the charts of the newest kernels (48-byte status).
func allCharts(t *testing.T) map[string]chartDef {
	t.Helper()
	charts := map[string]chartDef{}
	for _, c := range pluginCharts(t, 48) {
		charts[c.context] = c
	}
	return charts
}

// TestHealthCheckCatchesMistakes: checkHealth finds what Netdata 1.37 would
// take silently or only log.
func TestHealthCheckCatchesMistakes(t *testing.T) {
	const bad = `
 template: linux_audit_bad
       on: linux_audit.backlog_utilization
    class: Errors
     type: System
component: Audit
   lookup: max -1m unaligned of peek
    units: %
    every: 10s
     warn: ${linux_audit.failure_mode.panik} > 0 && $backlog > 0
     crit: ${linux_audit.failure.panic} > 0
  bogus: 1.43 only
     info: costs $5
       to: sysadmin

    alarm: audit_lost_events
       on: audit.lost
`
	_, problems := checkHealth(bad, allCharts(t))
	for _, want := range []string{
		`lookup dimension "peek"`,
		"$linux_audit.failure_mode.panik: chart linux_audit.failure_mode has no dimension panik",
		"$backlog is neither Netdata's nor a dimension",
		"$linux_audit.failure.panic: no chart linux_audit.failure",
		`key "bogus" is not accepted`,
		"linux_audit_bad: no summary",
		"info has a $",
		"audit_lost_events: alert names must start with linux_audit_",
		"audit_lost_events: an alarm, not a template",
		`on "audit.lost" is not a context`,
	} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, want) }) {
			t.Errorf("checkHealth missed %q; found %q", want, problems)
		}
	}
}

// TestHealthFileMatchesPluginAndMetadata checks health.d/audit.conf with
// checkHealth against the charts the built plugin defines (48-byte status:
// every chart), and that metadata.yaml lists exactly its alerts, with the
// same chart and info.
func TestHealthFileMatchesPluginAndMetadata(t *testing.T) {
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, "health.d", "audit.conf"))
	if err != nil {
		t.Fatal(err)
	}
	alerts, problems := checkHealth(string(text), allCharts(t))
	for _, p := range problems {
		t.Errorf("health.d/audit.conf: %s", p)
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts in health.d/audit.conf")
	}

	m, _ := readMetadata(t)
	meta := m.Modules[0].Alerts
	var names, metaNames []string
	for _, a := range alerts {
		names = append(names, a.name)
	}
	for _, a := range meta {
		metaNames = append(metaNames, a.Name)
	}
	if !slices.Equal(names, metaNames) {
		t.Fatalf("alerts in health.d/audit.conf %v,\nin metadata.yaml %v", names, metaNames)
	}
	for i, a := range alerts {
		ma := meta[i]
		if ma.Metric != a.keys["on"] {
			t.Errorf("metadata.yaml alert %s: metric %q, the file's on %q", a.name, ma.Metric, a.keys["on"])
		}
		if got, want := strings.Join(strings.Fields(ma.Info), " "), a.keys["info"]; got != want {
			t.Errorf("metadata.yaml alert %s: info\n%q\nthe file's\n%q", a.name, got, want)
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(ma.Link))); ma.Link != "health.d/audit.conf" || err != nil {
			t.Errorf("metadata.yaml alert %s: link %q (%v), want health.d/audit.conf", a.name, ma.Link, err)
		}
	}
	sort.Strings(names)
	t.Logf("%d alerts: %v", len(names), names)
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
