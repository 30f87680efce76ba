package kerneltest

import (
	"math"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Daemon is a fake audit daemon registered with the kernel that reads
// records at a set rate. kauditd blocks on the daemon's full socket, so
// while records are generated faster than it reads, the difference stays
// in the backlog: the backlog grows linearly at (generation - read) rate.
// (A daemon that reads nothing does not do that: the kernel moves the
// records it cannot deliver off the backlog, which then oscillates.)
type Daemon struct {
	rate atomic.Uint64 // math.Float64bits of records per second; +Inf: as fast as they come
	read atomic.Int64  // records read
	stop chan struct{}
	done chan struct{}
}

// daemonTick is the longest the reader sleeps when it has read its share
// (its rate is checked that often).
const daemonTick = 5 * time.Millisecond

// RegisterReadingDaemon registers a netlink socket of this process as the
// audit daemon, with the smallest receive buffer the kernel allows (so its
// buffer holds a record or two and the backlog shows the imbalance at
// once), and reads at most rate records per second from it until the
// restore. It skips when a real daemon is registered.
func (k *Kernel) RegisterReadingDaemon(rate float64) *Daemon {
	k.t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.restored {
		k.t.Fatalf("kerneltest: RegisterReadingDaemon after restore")
	}
	if k.daemon != nil {
		k.t.Fatalf("kerneltest: a daemon is registered already")
	}
	if pid := k.state.Original.PID; pid != 0 {
		k.t.Skipf("kerneltest: an audit daemon (pid %d) is registered; not replacing it", pid)
	}
	c, err := dial(0)
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1); err != nil {
		c.close()
		k.t.Fatalf("kerneltest: SO_RCVBUF: %v", err)
	}
	if err := c.set(maskPID, uint32(os.Getpid())); err != nil {
		c.close()
		k.t.Fatalf("kerneltest: register reading daemon: %v", err)
	}
	d := &Daemon{stop: make(chan struct{}), done: make(chan struct{})}
	d.SetRate(rate)
	k.daemon = c
	k.daemonStop = d.halt
	go d.run(c)
	return d
}

// SetRate changes the read rate (records per second; +Inf: unlimited).
func (d *Daemon) SetRate(rate float64) { d.rate.Store(math.Float64bits(rate)) }

// Read is the number of records read so far.
func (d *Daemon) Read() int64 { return d.read.Load() }

func (d *Daemon) halt() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.done
}

func (d *Daemon) run(c *conn) {
	defer close(d.done)
	buf := make([]byte, 1<<16)
	tokens := 0.0
	last := time.Now()
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		now := time.Now()
		rate := math.Float64frombits(d.rate.Load())
		// At most a tenth of a second's worth in hand: a reader that fell
		// behind does not catch up in a burst.
		tokens = math.Min(tokens+rate*now.Sub(last).Seconds(), math.Max(1, rate/10))
		last = now
		if tokens < 1 {
			wait := time.Duration((1 - tokens) / rate * float64(time.Second))
			time.Sleep(min(max(wait, 100*time.Microsecond), daemonTick))
			continue
		}
		// Blocking, bounded by SO_RCVTIMEO: kauditd refills the one-record
		// buffer as soon as a record is read.
		msgs, err := c.recv(buf)
		if err != nil {
			return
		}
		d.read.Add(int64(len(msgs)))
		tokens -= float64(len(msgs))
	}
}

// pacedScript creates $1 files per batch in $2, batches $4 seconds apart,
// until $3 batches are done (the sleep between batches makes the rate;
// the generator's own time per batch is small next to it).
const pacedScript = `i=0; b=0; while [ "$b" -lt "$3" ]; do j=0; while [ "$j" -lt "$1" ]; do : > "$2/f$i"; i=$((i+1)); j=$((j+1)); done; b=$((b+1)); sleep "$4"; done`

// Generator is a paced load generator running in its own process.
type Generator struct {
	cmd  *exec.Cmd
	done chan error
}

// StartPaced starts a new process (audited: forked after audit was
// enabled) that creates perBatch files in dir every interval, for at most
// d; the restore kills it. Wait for it with Wait, or Stop it.
func (k *Kernel) StartPaced(dir string, perBatch int, interval, d time.Duration) *Generator {
	k.t.Helper()
	batches := int(d / interval)
	secs := strconv.FormatFloat(interval.Seconds(), 'f', 3, 64)
	cmd, err := k.start("/bin/sh", "-c", pacedScript, "sh", strconv.Itoa(perBatch), dir, strconv.Itoa(batches), secs)
	if err != nil {
		k.t.Fatalf("kerneltest: %v", err)
	}
	g := &Generator{cmd: cmd, done: make(chan error, 1)}
	go func() { g.done <- k.wait(cmd) }()
	return g
}

// Stop kills the generator and waits for it.
func (g *Generator) Stop() {
	_ = g.cmd.Process.Kill()
	g.Wait()
}

// Wait waits for the generator to end and returns how it ended.
func (g *Generator) Wait() error {
	err := <-g.done
	g.done <- err
	return err
}

// ScratchDir makes a directory for a rule and a generator; it outlives the
// restore (so the kernel does not drop a dir= rule under us) and is removed
// after it.
func (k *Kernel) ScratchDir() string {
	k.t.Helper()
	return k.scratchDir()
}
