package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestOptionsUpdateEvery(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"default", nil, nil, 1},
		{"argv", []string{"5"}, nil, 5},
		{"argv before options", []string{"3", "-sample-interval", "1s"}, nil, 3},
		{"environment", nil, map[string]string{"NETDATA_UPDATE_EVERY": "2"}, 2},
		{"environment with options", []string{"-max-held-queries", "8"}, map[string]string{"NETDATA_UPDATE_EVERY": "4"}, 4},
		{"argv wins", []string{"7"}, map[string]string{"NETDATA_UPDATE_EVERY": "2"}, 7},
		// The global value is only a fallback: a bad one must not stop a
		// plugin that was given its own interval.
		{"argv wins over a bad environment", []string{"7"}, map[string]string{"NETDATA_UPDATE_EVERY": "x"}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOptions(tc.args, env(tc.env), &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if o.updateEvery != tc.want {
				t.Errorf("update every %d, want %d", o.updateEvery, tc.want)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	o, err := parseOptions([]string{"1"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.sampleInterval != 250*time.Millisecond || o.maxHeld != 64 || o.growthSpan != 20*time.Second || o.replay != "" || o.version {
		t.Errorf("defaults %+v", o)
	}
	o, err = parseOptions([]string{"2", "-sample-interval", "2s", "-max-held-queries", "1024", "-growth-window", "6s", "-replay", "f.jsonl"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.sampleInterval != 2*time.Second || o.maxHeld != 1024 || o.growthSpan != 6*time.Second || o.replay != "f.jsonl" {
		t.Errorf("parsed %+v", o)
	}
}

// Each bad option is named in the error, so the one log line says what to fix.
func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"0"}, "", `update interval "0"`},
		{[]string{"1s"}, "", `update interval "1s"`},
		{[]string{"abc"}, "", `update interval "abc"`},
		{nil, "0", "NETDATA_UPDATE_EVERY"},
		{nil, "fast", "NETDATA_UPDATE_EVERY"},
		{[]string{"1", "-bogus"}, "", "-bogus"},
		{[]string{"1", "-sample-interval", "soon"}, "", "-sample-interval"},
		{[]string{"1", "-sample-interval", "5ms"}, "", "-sample-interval"},
		{[]string{"1", "-sample-interval", "1001ms"}, "", "-sample-interval"},
		{[]string{"-sample-interval", "3s"}, "2", "-sample-interval"},
		{[]string{"1", "-max-held-queries", "0"}, "", "-max-held-queries"},
		{[]string{"1", "-max-held-queries", "1025"}, "", "-max-held-queries"},
		{[]string{"1", "-max-held-queries", "many"}, "", "-max-held-queries"},
		{[]string{"1", "-growth-window", "500ms"}, "", "-growth-window"},
		{[]string{"1", "extra"}, "", `"extra"`},
		{[]string{"1", "2"}, "", `"2"`},
		// Found by FuzzParseOptions: update intervals whose nanoseconds
		// overflow time.Duration were accepted (one wrapped to 0.3 s),
		// and a growth window of millions of samples cost memory and CPU
		// at every update.
		{[]string{"9223372036854775807"}, "", "update interval"},
		{[]string{"18446744074"}, "", "update interval"},
		{nil, "86401", "NETDATA_UPDATE_EVERY"},
		{[]string{"1", "-sample-interval", "10ms", "-growth-window", "24h"}, "", "-growth-window"},
	} {
		_, err := parseOptions(tc.args, env(map[string]string{"NETDATA_UPDATE_EVERY": tc.env}), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("args %q env %q: error %v, want one naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}

// An argument with a newline must not split the one log line (found by
// FuzzParseOptions: the flag package does not quote flag names).
func TestBadOptionIsOneLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"1", "-bo\ngus"}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if e := stderr.String(); strings.Count(e, "\n") != 1 || !strings.Contains(e, `-bo\x0agus`) {
		t.Errorf("stderr %q: want one line naming the flag, newline escaped", e)
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-h"}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("-h exit code %d, want 0", code)
	}
	if stdout.Len() != 0 {
		t.Errorf("-h wrote to stdout, which Netdata parses: %q", stdout.String())
	}
	usage := stderr.String()
	for _, s := range []string{"UPDATE_EVERY", "NETDATA_UPDATE_EVERY", "-sample-interval", "-max-held-queries", "-growth-window", "-replay", "-kernel-config", "-version"} {
		if !strings.Contains(usage, s) {
			t.Errorf("usage does not mention %s:\n%s", s, usage)
		}
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"-version"}, nil, &stdout, &stderr); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if stdout.String() != "audit.plugin "+version+"\n" {
		t.Errorf("stdout %q", stdout.String())
	}
}

// A bad configuration disables the plugin: Netdata would restart it to the
// same error forever otherwise.
func TestBadOptionDisables(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"1", "-max-held-queries", "0"}, nil, &stdout, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if stdout.String() != "DISABLE\n" {
		t.Errorf("stdout %q, want DISABLE", stdout.String())
	}
	if e := stderr.String(); !strings.Contains(e, "-max-held-queries") || strings.Count(e, "\n") != 1 {
		t.Errorf("stderr %q: want one line naming the option", e)
	}
}
