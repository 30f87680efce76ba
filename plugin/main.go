// Command audit.plugin is a Netdata external plugin that charts the Linux
// kernel audit status. Netdata starts it as "audit.plugin UPDATE_EVERY
// [options]" and reads the plugins.d protocol from its stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"auditplugin/netlink"
)

// version is set at build time: -ldflags "-X main.version=$(git describe)".
var version = "dev"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, os.Getenv, stderr)
	if isHelp(err) {
		return 0
	}
	if err == nil && opts.replay != "" {
		// A bad replay file will not fix itself: treat it as a bad option,
		// not as a transient error retried in silence.
		_, err = newReplayClient(opts.replay)()
	}
	if err != nil {
		fmt.Fprintf(stderr, "audit.plugin: %s (see audit.plugin -h)\n", oneLine(err.Error()))
		// A bad configuration will not fix itself: tell Netdata not to restart us.
		fmt.Fprintln(stdout, "DISABLE")
		return 1
	}
	if opts.version {
		fmt.Fprintln(stdout, "audit.plugin", version)
		return 0
	}

	return newPlugin(opts, stdout, stderr).serve(stdin)
}

// newReplayClient serves recorded statuses instead of the kernel. Only a
// test build (replay.go, build tag replay) sets it, with the -replay flag.
var newReplayClient func(path string) func() (statusClient, error)

// newPlugin wires the plugin to the kernel and the real process; tests
// replace the function fields.
func newPlugin(opts options, stdout, stderr io.Writer) *plugin {
	w := &lockedWriter{w: stdout} // shared by chart cycles, Function answers and keepalives
	p := &plugin{
		opts:           opts,
		interval:       time.Duration(opts.updateEvery) * time.Second,
		stdout:         w,
		out:            newProtocol(w),
		log:            newStateLog(stderr),
		newClient:      kernelClient(netlink.NewSenderLimit(opts.maxHeld)),
		kernelHZ:       netlink.KernelHZ,
		processExists:  procExists,
		parentAlive:    parentWatcher(),
		procStatus:     openProcStatus,
		track:          newStatusTracker(time.Now()),
		keepaliveEvery: keepaliveInterval(os.Getenv("NETDATA_VERSION")),
	}
	p.funcs = newFunctionServer(w, p.log, p.track)
	p.funcs.processExists = func(pid uint32) bool { return p.processExists(pid) }
	p.funcs.held = func() int { return int(p.held.Load()) }
	if opts.replay != "" {
		p.newClient = newReplayClient(opts.replay)
		p.funcs.countRules = func(context.Context) (int, error) {
			return 0, errors.New("replaying recorded statuses, no kernel")
		}
	}
	if opts.kernelConfig != "" {
		var files []string
		if opts.kernelConfig != "none" {
			files = strings.Split(opts.kernelConfig, ",")
		} else {
			files = []string{}
		}
		p.kernelHZ = func() (int, string, error) { return netlink.KernelHZFrom(files) }
	}
	return p
}

// serve runs the plugin until SIGTERM, SIGINT or SIGHUP, QUIT on stdin, a
// write error or a permanent error, and returns the exit code.
func (p *plugin) serve(stdin io.Reader) int {
	// SIGPIPE ignored: a write to a closed stdout returns EPIPE and we exit.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.watchStdin(stdin, cancel)
	// SIGUSR1: one line of runtime statistics on stderr (selfstats.go).
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go p.logSelfStats(ctx, usr1)
	return p.run(ctx)
}

// kernelClient opens a new netlink client for each (re)connection; every
// one counts its sends against limit, the plugin's one bound on the queries
// the kernel holds asleep, which outlive the client that sent them.
func kernelClient(limit *netlink.SenderLimit) func() (statusClient, error) {
	return func() (statusClient, error) {
		c, err := netlink.Open(limit)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// parentWatcher reports false once the process that started us is gone
// (we were re-parented), so the plugin never outlives Netdata.
func parentWatcher() func() bool {
	parent := os.Getppid()
	return func() bool { return os.Getppid() == parent }
}

// parentPoll is how often run checks that Netdata is still our parent: the
// plugin exits within about this long of Netdata's death, whatever
// update_every, also while it waits for its first status. A getppid every
// 500 ms costs nothing measurable. (PR_SET_PDEATHSIG would be cheaper but
// fires when the thread that set it exits, and Go moves goroutines between
// threads and ends threads; a pidfd of the parent could be reused once the
// parent died before we opened it.)
const parentPoll = 500 * time.Millisecond

// watchParent calls gone once parentAlive reports false, until ctx is done.
func (p *plugin) watchParent(ctx context.Context, gone func()) {
	t := time.NewTicker(parentPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !p.parentAlive() {
				p.log.printf("netdata (our parent process) is gone; exiting")
				gone()
				return
			}
		}
	}
}

type plugin struct {
	opts          options
	interval      time.Duration // update_every; tests shorten it
	stdout        io.Writer     // Netdata's pipe, one whole write at a time
	out           *protocol
	log           *stateLog
	newClient     func() (statusClient, error)
	kernelHZ      func() (hz int, source string, err error)
	processExists func(uint32) bool
	parentAlive   func() bool
	procStatus    func() io.Reader // /proc/self/status, read to explain a missing capability
	held          atomic.Int32     // queries held asleep at the last update, for selfstats

	track          *statusTracker  // what the status Function shows beyond the latest sample
	funcs          *functionServer // Function calls on stdin (function.go)
	keepaliveEvery time.Duration   // PLUGIN_KEEPALIVE interval, 0 for none (keepalive.go)
}

func (p *plugin) run(ctx context.Context) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.watchParent(ctx, cancel)

	hz, _, err := p.kernelHZ()
	if err != nil {
		p.log.printf("%v; charting backlog wait times in jiffies", err)
	}

	p.funcs.setHZ(hz)
	if p.keepaliveEvery > 0 {
		// From the start: retrying a first status may be silent for long.
		go keepalive(ctx, p.stdout, p.keepaliveEvery)
	}

	interval := p.interval
	s := newSampler(p.newClient, p.opts.sampleInterval, p.log, newGrowthEstimator(p.opts.growthSpan))
	s.track = p.track
	s.maxHeld, s.hz = p.opts.maxHeld, hz

	// The first status decides which charts this kernel can fill, and a
	// missing permission is reported before any chart exists.
	first, err := p.firstStatus(ctx, s, interval)
	if err != nil || ctx.Err() != nil {
		// The sampling goroutine, which closes the client, never started.
		if s.client != nil {
			s.client.Close()
		}
		if err != nil {
			return p.disable(err)
		}
		return 0
	}
	active := chartsFor(first.Fields, hz)
	for _, c := range active {
		if err := p.out.Chart(c, p.opts.updateEvery); err != nil {
			return p.exitOn(err)
		}
		for _, d := range c.dims {
			if err := p.out.Dimension(d); err != nil {
				return p.exitOn(err)
			}
		}
	}
	// Registered once a status exists, so the first call has one to show.
	if err := p.out.Function(functionName, functionTimeout, functionHelp, "top", functionAccess, functionPriority, functionVersion); err != nil {
		return p.exitOn(err)
	}
	if err := p.out.Flush(); err != nil {
		return p.exitOn(err)
	}

	sampleCtx, stopSampling := context.WithCancel(ctx)
	defer stopSampling()
	go s.run(sampleCtx)

	var last time.Time
	next := firstTick(time.Now(), interval)
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return 0
		case <-timer.C:
		}
		now := time.Now()
		// Skip ticks we slept through instead of bursting to catch up.
		for !next.After(now) {
			next = next.Add(interval)
		}
		w, fatal := s.take()
		if fatal != nil {
			return p.disable(fatal)
		}
		p.held.Store(int32(w.penalty.Held))
		var since time.Duration
		if !last.IsZero() {
			since = now.Sub(last)
		}
		last = now
		if err := p.emit(active, collect(w, p.processExists), since); err != nil {
			return p.exitOn(err)
		}
	}
}

// firstTick is the first update time: the next multiple of interval on the
// wall clock, so updates line up with Netdata's, but carried on the monotonic
// clock. Truncate drops the monotonic reading, and a schedule kept in wall
// time falls silent for as long as the clock is set back (an NTP step).
func firstTick(now time.Time, interval time.Duration) time.Time {
	return now.Add(now.Truncate(interval).Add(interval).Sub(now))
}

// firstStatus waits for one status, retrying transient errors every update
// interval; it returns a permanent error at once.
func (p *plugin) firstStatus(ctx context.Context, s *sampler, interval time.Duration) (netlink.Status, error) {
	for {
		s.sampleOnce(ctx)
		w, fatal := s.take()
		if fatal != nil {
			return netlink.Status{}, fatal
		}
		if w.samples > 0 {
			// Give the first cycle its sample back so it is not a gap.
			s.mu.Lock()
			s.win = w
			s.mu.Unlock()
			return w.last, nil
		}
		select {
		case <-ctx.Done():
			return netlink.Status{}, nil
		case <-time.After(interval):
		}
	}
}

func (p *plugin) emit(active []chart, values map[string]int64, since time.Duration) error {
	for _, c := range active {
		if err := p.out.Begin(c.fullID(), since); err != nil {
			return err
		}
		for _, d := range c.dims {
			var err error
			if v, ok := values[d.id]; ok {
				err = p.out.Set(d.id, v)
			} else {
				err = p.out.SetEmpty(d.id)
			}
			if err != nil {
				return err
			}
		}
		if err := p.out.End(); err != nil {
			return err
		}
	}
	return p.out.Flush()
}

func (p *plugin) disable(err error) int {
	exe, _ := os.Executable()
	p.log.printf("%s", explain(err, exe, p.procStatus()))
	p.out.Disable()
	p.out.Flush()
	return 1
}

// exitOn ends the plugin after a write failure: Netdata is gone or closed our pipe.
func (p *plugin) exitOn(err error) int {
	p.log.printf("%v; exiting", err)
	return 1
}
