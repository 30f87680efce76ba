// Command minloop is the floor the whole plugin is measured against (make
// bench): the least a Go program can do for the plugin's kernel work, one
// AUDIT_GET every 250 ms (the default -sample-interval), sent and received
// synchronously on one goroutine (bench.RawConn), its result discarded. It
// runs until killed.
package main

import (
	"fmt"
	"os"
	"time"

	"auditplugin/bench"
)

const interval = 250 * time.Millisecond

func main() {
	c, err := bench.DialRaw()
	if err != nil {
		fmt.Fprintln(os.Stderr, "minloop:", err)
		os.Exit(1)
	}
	next := time.Now()
	for {
		if _, err := c.Status(); err != nil {
			fmt.Fprintln(os.Stderr, "minloop:", err)
			os.Exit(1)
		}
		next = next.Add(interval)
		time.Sleep(time.Until(next))
	}
}
