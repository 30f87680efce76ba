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
	"runtime"
	"strings"
	"syscall"
	"time"

	"auditplugin/host"
	"auditplugin/netlink"
)

// version is set at build time: -ldflags "-X main.version=$(git describe)".
var version = "dev"

func main() {
	// One P: the plugin's goroutines take turns in a few microseconds a
	// sample, and with a second P idle every goroutine made ready (a send,
	// a reply, a tick) wakes a second thread to look for work and sleep
	// again, which cost more CPU than the work itself (bench/run.sh). A
	// send the kernel holds asleep does not hold the P: the runtime hands
	// it on from a blocked system call. GOMAXPROCS in the environment wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(realMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func realMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	opts, err := parseOptions(args, os.Getenv, stderr)
	if isHelp(err) {
		return 0
	}
	var replayed statusClient
	if err == nil && opts.replay != "" {
		// A bad replay file will not fix itself: treat it as a bad option,
		// not as a transient error retried in silence.
		replayed, err = loadReplay(opts.replay)
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

	p := newPlugin(opts, stdout, stderr)
	if replayed != nil {
		p.replayFrom(replayed)
	}
	return p.serve(stdin)
}

// loadReplay reads recorded statuses to serve instead of the kernel's. Only
// a test build (replay.go, build tag replay) sets it, with the -replay flag.
var loadReplay func(path string) (statusClient, error)

// replayFrom makes the plugin chart c's statuses instead of the kernel's.
func (p *plugin) replayFrom(c statusClient) {
	p.newClient = func() (statusClient, error) { return c, nil }
	p.funcs.countRules = func(context.Context) (int, error) {
		return 0, errors.New("replaying recorded statuses, no kernel")
	}
}

// newPlugin wires the plugin to the kernel and the real process; tests
// replace the function fields.
func newPlugin(opts options, stdout, stderr io.Writer) *plugin {
	w := &lockedWriter{w: stdout} // shared by chart cycles, Function answers and keepalives
	p := &plugin{
		opts:           opts,
		second:         time.Second,
		stdout:         w,
		out:            newProtocol(w),
		log:            newStateLog(stderr),
		newClient:      kernelClient(netlink.NewSenderLimit(opts.maxHeld)),
		kernelHZ:       host.KernelHZ,
		processExists:  procExists,
		parentAlive:    parentWatcher(),
		procStatus:     openProcStatus,
		stats:          &selfCounters{},
		track:          newStatusTracker(time.Now()),
		keepaliveEvery: keepaliveInterval(os.Getenv("NETDATA_VERSION")),
	}
	p.funcs = newFunctionServer(w, p.log, p.track)
	p.funcs.processExists = func(pid uint32) bool { return p.processExists(pid) }
	p.funcs.held = p.stats.heldQueries
	if opts.kernelConfig != "" {
		var files []string
		if opts.kernelConfig != "none" {
			files = strings.Split(opts.kernelConfig, ",")
		} else {
			files = []string{}
		}
		p.kernelHZ = func() (int, error) { return host.KernelHZFrom(files) }
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
	go p.stats.logOn(ctx, usr1, p.log)
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
	repeat(ctx, parentPoll, func() bool {
		if p.parentAlive() {
			return true
		}
		p.log.printf("netdata (our parent process) is gone; exiting")
		gone()
		return false
	})
}
