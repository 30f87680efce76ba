package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"
)

// Netdata 2.x disconnects a plugin that writes nothing for 2 minutes: with
// an update interval past a minute, and while the first status is retried
// (silently, once per interval), the plugin says PLUGIN_KEEPALIVE every
// minute. Netdata 1.37 does not know the keyword (it kills and restarts a
// plugin that sends it) and disconnects no silent plugin: only 2.x gets it.
const keepaliveEvery = 60 * time.Second

// keepaliveInterval is how often to send PLUGIN_KEEPALIVE, 0 for never.
func keepaliveInterval(netdataVersion string) time.Duration {
	if netdataMajor(netdataVersion) < 2 {
		return 0
	}
	return keepaliveEvery
}

// netdataMajor reads the major version from NETDATA_VERSION ("v2.11.0",
// "2.11.0-12-nightly", "v1.37.1"); 0 when absent or unreadable.
func netdataMajor(v string) int {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// keepalive writes PLUGIN_KEEPALIVE every interval until ctx is done or a
// write fails (the chart loop then fails on its own next write).
func keepalive(ctx context.Context, out io.Writer, every time.Duration) {
	repeat(ctx, every, func() bool {
		_, err := io.WriteString(out, "PLUGIN_KEEPALIVE\n")
		return err == nil
	})
}

// repeat calls f every d until ctx is done or f returns false.
func repeat(ctx context.Context, d time.Duration, f func() (again bool)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f() {
			return
		}
	}
}
