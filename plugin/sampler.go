package main

import (
	"context"
	"errors"
	"sync"
	"time"

	"auditplugin/netlink"
)

// statusClient is what the sampler needs from the kernel; netlink.Client in
// production, a replay of recorded statuses or a fake in tests.
type statusClient interface {
	Status(ctx context.Context) (netlink.Status, error)
	Penalty() netlink.Penalty
	Close() error
}

// sampler queries the kernel several times per update_every, in its own
// goroutine, so the emit loop never waits on the kernel. It folds samples into
// a window that the emit loop takes once per cycle.
type sampler struct {
	newClient func() (statusClient, error)
	interval  time.Duration
	log       *stateLog
	growth    *growthEstimator
	track     *statusTracker // the status Function's view; nil in some tests

	// prev is the last sample's counters. Only the goroutine that samples
	// touches it (first, then run), and it must carry over from the
	// first status to run, or what is lost in between is never counted.
	prev counterState
	// Pacing while the kernel holds queries (see heldPace); set before run.
	maxHeld  int       // the client's bound on queries held at once
	hz       int       // jiffies per second; 0: unknown
	lastSend time.Time // only the sampling goroutine touches it

	mu     sync.Mutex
	client statusClient // replaced only by the sampling goroutine
	win    window
	totals counters
	fatal  error // a permanent error: the plugin must stop
	// The last sample, carried into a window without one while a query is
	// held (see take).
	lastWin  window
	haveLast bool
}

// window summarizes the samples taken since the last take.
type window struct {
	samples     int
	last        netlink.Status
	peakBacklog uint32
	peakUtilBP  int64 // basis points; -1 when no sample had a limit
	maxReply    time.Duration
	longestHold time.Duration // longest query hold seen while sampling
	counters    counters
	penalty     netlink.Penalty
	overflowIn  time.Duration // estimated time until the backlog is full
	overflowOK  bool          // whether there is an estimate
	failed      bool          // a query failed, and no sample since
	carried     bool          // no fresh sample: the last one, while queries are held
}

// counters accumulate the kernel's cumulative counters without ever going
// backwards: a reset (auditctl --reset-lost) to 0 adds the new value instead
// of a negative delta, so Netdata's incremental rate never spikes or dips.
type counters struct {
	lost, waitActual uint64
}

type counterState struct {
	seen       bool
	at         time.Time // when the counters were read
	lost, wait uint32
}

func newSampler(newClient func() (statusClient, error), interval time.Duration, log *stateLog, growth *growthEstimator) *sampler {
	return &sampler{newClient: newClient, interval: interval, log: log, growth: growth, win: window{peakUtilBP: -1}}
}

// first waits for one status, retrying transient errors every retry; it
// returns a permanent error at once, and a zero status once ctx is done.
// The status stays in the window, so the first update is not a gap.
func (s *sampler) first(ctx context.Context, retry time.Duration) (netlink.Status, error) {
	for {
		s.sampleOnce(ctx)
		s.mu.Lock()
		w, fatal := s.win, s.fatal
		if w.samples == 0 && fatal == nil {
			s.win = window{peakUtilBP: -1} // drop the error: the retry decides
		}
		s.mu.Unlock()
		if fatal != nil {
			return netlink.Status{}, fatal
		}
		if w.samples > 0 {
			return w.last, nil
		}
		select {
		case <-ctx.Done():
			return netlink.Status{}, nil
		case <-time.After(retry):
		}
	}
}

// close closes the client; run does it when it returns, and whoever never
// starts run after first must.
func (s *sampler) close() {
	if c := s.currentClient(); c != nil {
		c.Close()
	}
}

// run samples until ctx is done or a permanent error occurs.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	defer s.close()
	for {
		if s.sampleOnce(ctx) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleOnce takes one sample; it reports true when sampling must stop.
func (s *sampler) sampleOnce(ctx context.Context) (stop bool) {
	if s.client == nil {
		c, err := s.newClient()
		if err != nil {
			return s.fail(err)
		}
		s.setClient(c)
	}
	// While the kernel holds a query asleep, every further query is held too
	// (up to backlog_wait_time): pace them so the bounded pool lasts.
	if s.held(s.client.Penalty()) {
		return false
	}
	qctx, cancel := context.WithTimeout(ctx, s.interval)
	start := time.Now()
	s.lastSend = start
	st, err := s.client.Status(qctx)
	reply := time.Since(start)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return true // shutting down: not a failure to log
		}
		if errors.Is(err, netlink.ErrHeld) {
			// Every query is asleep in the kernel: a stall, which the held
			// charts show, not a failure to log (take carries the last
			// sample meanwhile).
			return false
		}
		if errors.Is(err, netlink.ErrClosed) {
			s.client.Close()
			s.setClient(nil)
		}
		return s.fail(err)
	}
	s.log.ok("audit status")
	s.add(st, reply, start)
	return false
}

func (s *sampler) fail(err error) bool {
	permanent := netlink.IsPermanent(err)
	s.mu.Lock()
	if permanent {
		s.fatal = err
	} else {
		s.win.failed = true
	}
	s.mu.Unlock()
	// Logged outside the lock: a slow stderr must not stall take, and so the emit loop.
	if !permanent {
		s.log.failed("audit status", err)
	}
	return permanent
}

// held keeps the longest hold pen reports (Penalty resets it, and take must
// still see a hold that ended before it) and reports whether to skip this
// query because queries are asleep in the kernel: the pool is used up, the
// window already has a sample, or the last query went out less than
// heldPace ago.
func (s *sampler) held(pen netlink.Penalty) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.win.longestHold = max(s.win.longestHold, pen.LongestHold)
	if pen.Held == 0 {
		return false
	}
	if s.maxHeld > 0 && pen.Held >= s.maxHeld {
		return true
	}
	return s.win.samples > 0 || time.Since(s.lastSend) < s.heldPace()
}

// heldPace is the least time between two queries while one is held. The
// kernel holds each for up to backlog_wait_time W (its reply is queued
// before, so each still gives a fresh sample), and at most maxHeld N may be
// held at once: one query per W/(N-1) keeps one slot spare however long the
// stall lasts. W comes from the last status; with HZ unknown, 100 (the
// lowest common HZ, so the longest W) is assumed.
func (s *sampler) heldPace() time.Duration {
	if !s.haveLast || s.maxHeld <= 1 {
		return 0
	}
	hz := s.hz
	if hz <= 0 {
		hz = 100
	}
	w := time.Duration(s.lastWin.last.BacklogWaitTime) * time.Second / time.Duration(hz)
	return w / time.Duration(s.maxHeld-1)
}

func (s *sampler) add(st netlink.Status, reply time.Duration, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := &s.prev
	var lost uint64
	if prev.seen {
		elapsed := at.Sub(prev.at)
		lost = counterDelta(prev.lost, st.Lost, elapsed)
		s.totals.lost += lost
		s.totals.waitActual += counterDelta(prev.wait, st.BacklogWaitTimeActual, elapsed)
	}
	*prev = counterState{seen: true, at: at, lost: st.Lost, wait: st.BacklogWaitTimeActual}

	w := &s.win
	w.samples++
	w.last = st
	w.failed = false
	w.counters = s.totals
	w.peakBacklog = max(w.peakBacklog, st.Backlog)
	if st.BacklogLimit > 0 {
		w.peakUtilBP = max(w.peakUtilBP, utilizationBP(st.Backlog, st.BacklogLimit))
	}
	w.maxReply = max(w.maxReply, reply)
	s.growth.add(at, st.Backlog)
	if s.track != nil {
		s.track.observe(st, at, lost)
	}
	s.lastWin = window{samples: 1, last: st, peakBacklog: st.Backlog, peakUtilBP: -1, maxReply: reply, counters: s.totals}
	if st.BacklogLimit > 0 {
		s.lastWin.peakUtilBP = utilizationBP(st.Backlog, st.BacklogLimit)
	}
	s.haveLast = true
}

// maxCounterRate bounds how fast lost or backlog_wait_time_actual can
// plausibly grow, per second. lost counts records the kernel began to build
// and dropped; a record costs a syscall and at least about a microsecond of
// CPU, so even 128 CPUs lose fewer than 2^27 (134 M) a second (measured here:
// about 230 k/s on 2 CPUs). backlog_wait_time_actual adds the jiffies every
// stalled task slept: 2^27 a second at HZ 1000 is 134 k tasks asleep all the
// time.
const maxCounterRate = 1 << 27

// counterDelta is the increase of a u32 cumulative counter read elapsed
// apart. A smaller value is either a wrap past 2^32 or a reset to 0
// (auditctl --reset-lost; backlog_wait_time_actual is reset by the same
// AUDIT_SET mechanism). The rule: it is a wrap when the increase modulo 2^32
// (which is 2^32 - prev + cur, so prev must have been near 2^32) is at most
// what maxCounterRate allows in elapsed (and less than 2^31, past which a
// modular increase says nothing); otherwise a reset, after which the counter
// has counted cur. A reset from within that distance of 2^32 is taken for a
// wrap; it overcounts by at most the bound and is far rarer than a wrap there.
func counterDelta(prev, cur uint32, elapsed time.Duration) uint64 {
	if cur >= prev {
		return uint64(cur - prev)
	}
	inc := uint64(cur - prev) // modular: 2^32 - prev + cur
	bound := uint64(1<<31 - 1)
	if elapsed <= 0 {
		bound = 0
	} else if elapsed < time.Duration(bound/maxCounterRate)*time.Second {
		bound = uint64(elapsed.Seconds() * maxCounterRate)
	}
	if inc <= bound {
		return inc
	}
	return uint64(cur)
}

func utilizationBP(backlog, limit uint32) int64 {
	return int64(backlog) * 10000 / int64(limit)
}

// take returns the window since the last take and starts a new one.
func (s *sampler) take() (window, error) {
	var pen netlink.Penalty
	if c := s.currentClient(); c != nil {
		pen = c.Penalty()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.win
	if w.samples == 0 && !w.failed && pen.Held > 0 && s.haveLast {
		// No fresh sample because the kernel holds our queries (paced, or
		// the pool used up): chart the last sample again rather than a gap.
		// The held charts show the stall live meanwhile.
		w = s.lastWin
		w.carried = true
	}
	w.penalty = pen
	w.penalty.LongestHold = max(pen.LongestHold, s.win.longestHold)
	if w.samples > 0 {
		w.overflowIn, w.overflowOK = s.growth.estimate(w.last.BacklogLimit)
	}
	s.win = window{peakUtilBP: -1}
	return w, s.fatal
}

func (s *sampler) setClient(c statusClient) {
	s.mu.Lock()
	s.client = c
	s.mu.Unlock()
}

func (s *sampler) currentClient() statusClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}
