package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"auditplugin/netlink"
)

type options struct {
	updateEvery    int
	sampleInterval time.Duration
	maxHeld        int
	growthSpan     time.Duration
	replay         string // test builds only (replay.go): recorded statuses instead of the kernel
	kernelConfig   string // test builds only (replay.go): kernel config files to read CONFIG_HZ from ("none": none)
	version        bool
}

// testFlags adds the flags of a test build (replay.go, build tag replay);
// nil in the shipped binary, which rejects them as unknown.
var testFlags func(fs *flag.FlagSet, o *options)

const defaultSampleInterval = 250 * time.Millisecond

// Upper bounds: beyond them an option is a mistake, and it would cost the
// machine something (a longer update interval overflows time.Duration; a
// growth window of millions of samples costs memory and CPU every update).
const (
	maxUpdateEvery   = 86400 // seconds
	maxGrowthSamples = 10000 // -growth-window / -sample-interval
)

const usageText = `Usage: audit.plugin [UPDATE_EVERY] [options]

Netdata external plugin: charts the Linux kernel audit status (backlog,
utilization, lost records, failure mode, backlog wait) and warns before a full
backlog loses records or, with failure mode 2, panics the machine.

UPDATE_EVERY is the collection interval in seconds (Netdata passes it);
without it NETDATA_UPDATE_EVERY is used, else 1. Netdata passes the options
below from netdata.conf:

  [plugin:audit]
      command options = -sample-interval 200ms

Options:
`

// parseOptions reads argv (without the program name) and the environment.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	o := options{updateEvery: 1}
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > maxUpdateEvery {
			return o, fmt.Errorf("invalid update interval %q: want a positive integer of seconds, at most %d", args[0], maxUpdateEvery)
		}
		o.updateEvery = n
		args = args[1:]
	} else if v := getenv("NETDATA_UPDATE_EVERY"); v != "" {
		// Only a fallback: argv[1], what Netdata set for this plugin, wins
		// even when the global value is unusable.
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxUpdateEvery {
			return o, fmt.Errorf("invalid NETDATA_UPDATE_EVERY %q: want a positive integer of seconds, at most %d", v, maxUpdateEvery)
		}
		o.updateEvery = n
	}

	fs := flag.NewFlagSet("audit.plugin", flag.ContinueOnError)
	// Errors are reported by the caller in one line; only -h prints the usage.
	fs.SetOutput(io.Discard)
	fs.DurationVar(&o.sampleInterval, "sample-interval", defaultSampleInterval,
		"how often to read the audit status between updates; peaks are charted per update")
	fs.IntVar(&o.maxHeld, "max-held-queries", netlink.DefaultMaxSenders,
		"most status queries the kernel may hold asleep at once (one thread each) during a backlog stall")
	fs.DurationVar(&o.growthSpan, "growth-window", 20*time.Second,
		"longest span of backlog samples the time-to-overflow estimate fits lines through (it also fits the last 1/10, 1/4 and 1/2 of it)")
	if testFlags != nil {
		testFlags(fs, &o)
	}
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stderr, usageText)
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return o, err
		}
		// The flag package quotes values but not flag names: an argument
		// with a newline would split the one log line.
		return o, errors.New(oneLine(err.Error()))
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.sampleInterval < 10*time.Millisecond:
		return o, fmt.Errorf("invalid -sample-interval %v: must be at least 10ms", o.sampleInterval)
	case o.sampleInterval > time.Duration(o.updateEvery)*time.Second:
		return o, fmt.Errorf("invalid -sample-interval %v: must not exceed the update interval %ds", o.sampleInterval, o.updateEvery)
	case o.maxHeld < 1 || o.maxHeld > 1024:
		return o, fmt.Errorf("invalid -max-held-queries %d: must be between 1 and 1024", o.maxHeld)
	case o.growthSpan < o.sampleInterval*3:
		return o, fmt.Errorf("invalid -growth-window %v: must cover at least three samples", o.growthSpan)
	case o.growthSpan/o.sampleInterval > maxGrowthSamples:
		return o, fmt.Errorf("invalid -growth-window %v: must cover at most %d samples of -sample-interval %v", o.growthSpan, maxGrowthSamples, o.sampleInterval)
	}
	return o, nil
}

func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }
