//go:build replay

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzReplayFile feeds arbitrary files to the -replay reader. It never
// panics; an error names the file; a success serves one status per
// non-empty line, in order and in a loop, and any status it serves makes a
// stream that passes checkStream.
func FuzzReplayFile(f *testing.F) {
	good, err := os.ReadFile(filepath.Join("testdata", "replay.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("{}\n"))
	f.Add([]byte("\n\n"))
	f.Add([]byte("{\"Backlog\": }\n"))
	f.Add([]byte("null\n{\"Enabled\":7,\"Failure\":9,\"Fields\":255,\"BacklogLimit\":1}\r\n"))
	f.Add([]byte("{\"Backlog\":4294967295,\"BacklogLimit\":1,\"Fields\":15,\"ReplyBytes\":-1}\n"))
	f.Add(append([]byte("{\"Backlog\":1,\"x\":\""), append(bytes.Repeat([]byte("a"), 70000), "\"}\n"...)...))
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "replay.jsonl")
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := readReplay(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		r := c
		lines := 0
		for _, l := range strings.Split(string(content), "\n") {
			if strings.TrimSuffix(l, "\r") != "" {
				lines++
			}
		}
		if len(r.statuses) != lines {
			t.Fatalf("%d statuses from %d non-empty lines", len(r.statuses), lines)
		}
		s := newSampler(nil, time.Second, newStateLog(&bytes.Buffer{}), newGrowthEstimator(20*time.Second))
		var out bytes.Buffer
		p := &plugin{out: newProtocol(&out)}
		at := time.Now()
		var active []chart
		for i := 0; i <= len(r.statuses); i++ {
			st, err := c.Status(context.Background())
			if err != nil || st != r.statuses[i%len(r.statuses)] {
				t.Fatalf("status %d = %+v, %v; want %+v", i, st, err, r.statuses[i%len(r.statuses)])
			}
			s.add(st, time.Millisecond, at.Add(time.Duration(i)*time.Second))
			if i == 0 {
				active = chartsFor(st.Fields, 250)
				for _, ch := range active {
					p.out.Chart(ch, 1)
					for _, d := range ch.dims {
						p.out.Dimension(d)
					}
				}
			}
			w, _ := s.take()
			var since time.Duration
			if i > 0 {
				since = time.Second
			}
			if err := p.emit(active, collect(w, func(uint32) bool { return true }), since); err != nil {
				t.Fatal(err)
			}
		}
		checkStream(t, out.String())
	})
}
