package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"auditplugin/netlink/nltest"
)

// optionNames are what an options error may name to tell the operator what
// to fix.
var optionNames = []string{"update interval", "NETDATA_UPDATE_EVERY", "-sample-interval", "-max-held-queries", "-growth-window", "-replay", "-version"}

// FuzzParseOptions feeds arbitrary argv (NUL-separated) and
// NETDATA_UPDATE_EVERY to parseOptions. It never panics; an error is one
// line naming the option (or quoting the argument) at fault; a success is a
// configuration the plugin can run with: positive intervals that do not
// overflow, sampling within the update interval, bounded memory.
func FuzzParseOptions(f *testing.F) {
	for _, seed := range []struct{ args, env string }{
		{"", ""},
		{"1", ""},
		{"", "5"},
		{"2\x00-sample-interval\x00500ms", ""},
		{"1\x00-max-held-queries\x001024\x00-growth-window\x0060s", ""},
		{"-sample-interval=1s", "x"},
		{"1\x00-replay\x00/tmp/f.jsonl\x00-version", ""},
		{"1\x00-h", ""},
		{"1\x00--help", ""},
		{"9223372036854775807", ""},
		{"18446744074", ""},
		{"1\x00-bo\ngus", ""},
		{"1\x00-growth-window\x002562047h", ""},
		{"1\x00-sample-interval\x0010ms\x00-growth-window\x0024h", ""},
		{"1\x00extra\x00args", ""},
		{"\x00", ""},
		{"1\x00-sample-interval", ""},
		{"1\x00---x", ""},
	} {
		f.Add(seed.args, seed.env)
	}
	f.Fuzz(func(t *testing.T, argv, envValue string) {
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\x00")
		}
		var stderr bytes.Buffer
		o, err := parseOptions(args, func(k string) string {
			if k == "NETDATA_UPDATE_EVERY" {
				return envValue
			}
			return ""
		}, &stderr)
		if isHelp(err) {
			if !strings.Contains(stderr.String(), "Usage:") {
				t.Fatalf("-h printed no usage: %q", stderr.String())
			}
			return
		}
		if stderr.Len() > 0 {
			t.Fatalf("args %q: wrote to stderr without -h: %q", args, stderr.String())
		}
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("args %q: error is not one line: %q", args, msg)
			}
			named := false
			for _, n := range optionNames {
				named = named || strings.Contains(msg, n)
			}
			for _, a := range args {
				// -flag=value and --flag: the flag package names "-flag".
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				named = named || strings.Contains(msg, strconv.Quote(a)) || (a != "" && strings.Contains(msg, oneLine(a))) ||
					(name != "" && strings.Contains(msg, oneLine(name)))
			}
			if !named {
				t.Fatalf("args %q env %q: error %q names no option or argument", args, envValue, msg)
			}
			return
		}
		update := time.Duration(o.updateEvery) * time.Second
		switch {
		case o.updateEvery < 1 || o.updateEvery > maxUpdateEvery || update/time.Second != time.Duration(o.updateEvery):
			t.Fatalf("args %q env %q: accepted update interval %d", args, envValue, o.updateEvery)
		case o.sampleInterval < 10*time.Millisecond || o.sampleInterval > update:
			t.Fatalf("args %q: accepted -sample-interval %v with update interval %v", args, o.sampleInterval, update)
		case o.maxHeld < 1 || o.maxHeld > 1024:
			t.Fatalf("args %q: accepted -max-held-queries %d", args, o.maxHeld)
		case o.growthSpan < 3*o.sampleInterval || o.growthSpan/o.sampleInterval > maxGrowthSamples:
			t.Fatalf("args %q: accepted -growth-window %v at -sample-interval %v", args, o.growthSpan, o.sampleInterval)
		}
	})
}

// FuzzPluginDatagrams runs the whole plugin against a fake kernel that
// answers with fuzzed datagrams. The input is a list of records, used in
// turn for each request: one flags byte, a 2-byte length, the datagram.
// Flag 1 rewrites the sequence number of every message in it to the
// request's; flag 2 also sends a valid status reply after it; flag 4 sends
// nothing at all (a timeout). Whatever arrives, the stream passes
// checkStream, every update sets every dimension of its chart, and run
// returns when cancelled (0) or after DISABLE (1).
func FuzzPluginDatagrams(f *testing.F) {
	rec := func(flags byte, datagram []byte) []byte {
		b := []byte{flags, 0, 0}
		binary.LittleEndian.PutUint16(b[1:], uint16(len(datagram)))
		return append(b, datagram...)
	}
	reply := func(payload []byte) []byte { return nltest.Message(1000, 0, 0, 0, payload) }
	errMsg := func(errno syscall.Errno) []byte {
		return nltest.Error(syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: 1000}}, errno)
	}
	f.Add(rec(1, reply(steadyPayload)))
	f.Add(append(rec(1, reply(steadyPayload)), rec(4, nil)...))
	f.Add(append(rec(1, reply(nltest.StatusPayload(0, 1, 0, 0, 0, 0, 0, 0))), rec(1, reply(nltest.StatusPayload(1, 2, 3)))...))
	f.Add(append(rec(1, reply(steadyPayload)), rec(1, errMsg(syscall.EPERM))...))
	f.Add(append(rec(1, errMsg(0)), rec(3, reply(steadyPayload)[:30])...))
	f.Add(rec(2, []byte("garbage")))
	f.Add(rec(3, nltest.Datagram(reply(steadyPayload), reply(nltest.StatusPayload(make([]uint32, 1024)...)))))
	f.Add(append(rec(1, reply(nltest.StatusPayload(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12))), rec(0, reply(steadyPayload))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		type record struct {
			flags    byte
			datagram []byte
		}
		var recs []record
		for len(data) > 0 {
			r := record{flags: data[0]}
			data = data[1:]
			n := len(data)
			if len(data) >= 2 {
				n = min(int(binary.LittleEndian.Uint16(data)), len(data)-2)
				data = data[2:]
			}
			r.datagram, data = data[:n], data[n:]
			recs = append(recs, r)
		}
		if len(recs) == 0 {
			return
		}
		var n atomic.Uint32
		conn := nltest.Dial(func(req syscall.NetlinkMessage) ([][]byte, error) {
			r := recs[int(n.Add(1)-1)%len(recs)]
			if r.flags&4 != 0 {
				return nil, nil
			}
			d := append([]byte(nil), r.datagram...)
			if r.flags&1 != 0 {
				setSeqs(d, req.Header.Seq)
			}
			out := [][]byte{d}
			if r.flags&2 != 0 {
				out = append(out, nltest.Reply(req, steadyPayload))
			}
			return out, nil
		})
		h := newHarness(kernel(conn, 4))
		h.p.second = 6 * time.Millisecond
		h.p.opts.sampleInterval = 2 * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		exit := make(chan int, 1)
		go func() { exit <- h.p.run(ctx) }()
		deadline := time.After(50 * time.Millisecond)
		code := -1
	wait:
		for code < 0 && len(h.stdout.snapshot()) < 5 {
			select {
			case code = <-exit:
			case <-h.stdout.more:
			case <-deadline:
				break wait
			}
		}
		cancel()
		if code < 0 {
			// The fuzzer has no time limit per input: a run that never
			// returns would stall it silently.
			select {
			case code = <-exit:
			case <-time.After(5 * time.Second):
				buf := make([]byte, 1<<20)
				t.Fatalf("run did not return 5 s after cancel; goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			}
		}
		s := checkStream(t, h.stdout.String())
		checkComplete(t, s)
		if code != 0 && !(code == 1 && s.disabled) {
			t.Fatalf("run returned %d (disabled=%v); stderr: %s", code, s.disabled, h.stderr)
		}
	})
}

// setSeqs rewrites the sequence number of every message header it can walk.
func setSeqs(d []byte, seq uint32) {
	for off := 0; off+syscall.NLMSG_HDRLEN <= len(d); {
		binary.NativeEndian.PutUint32(d[off+8:], seq)
		l := int(binary.NativeEndian.Uint32(d[off:]))
		if l < syscall.NLMSG_HDRLEN {
			return
		}
		off += (l + 3) &^ 3
	}
}

// checkComplete fails unless every update sets (or gaps) every dimension of
// its chart: a dimension left out of an update is silently carried over by
// Netdata, which shows stale data as fresh.
func checkComplete(t testing.TB, s *stream) {
	t.Helper()
	for i, u := range s.updates {
		c := s.charts[u.chart]
		if c == nil {
			continue // checkStream reported it
		}
		for _, d := range c.dims {
			if _, ok := u.values[d.id]; !ok {
				t.Errorf("update %d of %s does not set %s", i, u.chart, d.id)
			}
		}
	}
}
