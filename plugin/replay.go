//go:build replay

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"

	"auditplugin/netlink"
)

// replay serves statuses recorded in a file, one JSON object per line, in a
// loop. It exists so tests can show states this machine must never enter
// (failure mode 2 panics it) to a real Netdata. Only test builds have it
// (go build -tags replay): the shipped binary holds cap_audit_control, and
// must not read whatever file a command line names.
type replay struct {
	mu       sync.Mutex
	statuses []netlink.Status
	next     int
}

func init() {
	testFlags = func(fs *flag.FlagSet, o *options) {
		fs.StringVar(&o.replay, "replay", "",
			"testing only: read statuses from this file (JSON lines) instead of the kernel")
		fs.StringVar(&o.kernelConfig, "kernel-config", "",
			"testing only: comma-separated kernel config files to read CONFIG_HZ from, \"none\" for none (HZ then comes from the clock)")
	}
	loadReplay = func(path string) (statusClient, error) { return readReplay(path) }
}

// readReplay loads the statuses recorded in path.
func readReplay(path string) (*replay, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open replay file: %w", err)
	}
	defer f.Close()
	r := &replay{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var s netlink.Status
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("replay file %s line %d: %w", path, line, err)
		}
		r.statuses = append(r.statuses, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read replay file %s: %w", path, err)
	}
	if len(r.statuses) == 0 {
		return nil, fmt.Errorf("replay file %s has no statuses", path)
	}
	return r, nil
}

func (r *replay) Status(context.Context) (netlink.Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.statuses[r.next%len(r.statuses)]
	r.next++
	return s, nil
}

func (r *replay) Penalty() netlink.Penalty { return netlink.Penalty{} }
func (r *replay) Close() error             { return nil }
