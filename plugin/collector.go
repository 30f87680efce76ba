package main

import (
	"context"
	"io"
	"os"
	"time"
)

type plugin struct {
	opts          options
	second        time.Duration // one second of update_every: time.Second; tests shorten it
	stdout        io.Writer     // Netdata's pipe, one whole write at a time
	out           *protocol
	log           *stateLog
	newClient     func() (statusClient, error)
	kernelHZ      func() (hz int, err error)
	processExists func(uint32) bool
	parentAlive   func() bool
	procStatus    func() io.Reader // /proc/self/status, read to explain a missing capability
	stats         *selfCounters    // SIGUSR1's line; counts the queries held at the last update

	track          *statusTracker  // what the status Function shows beyond the latest sample
	funcs          *functionServer // Function calls on stdin (function.go)
	keepaliveEvery time.Duration   // PLUGIN_KEEPALIVE interval, 0 for none (keepalive.go)
}

func (p *plugin) run(ctx context.Context) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go p.watchParent(ctx, cancel)

	hz, err := p.kernelHZ()
	if err != nil {
		p.log.printf("%v; charting backlog wait times in jiffies", err)
	}

	p.funcs.setHZ(hz)
	if p.keepaliveEvery > 0 {
		// From the start: retrying a first status may be silent for long.
		go keepalive(ctx, p.stdout, p.keepaliveEvery)
	}

	interval := time.Duration(p.opts.updateEvery) * p.second
	s := newSampler(p.newClient, p.opts.sampleInterval, p.log, newGrowthEstimator(p.opts.growthSpan))
	s.track = p.track
	s.maxHeld, s.hz = p.opts.maxHeld, hz

	// The first status decides which charts this kernel can fill, and a
	// missing permission is reported before any chart exists.
	first, err := s.first(ctx, interval)
	if err != nil || ctx.Err() != nil {
		s.close() // the sampling goroutine, which would close it, never starts
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
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-timer.C:
		}
		now := time.Now()
		// Skip ticks we slept through instead of bursting to catch up.
		for !next.After(now) {
			next = next.Add(interval)
		}
		timer.Reset(time.Until(next))
		w, fatal := s.take()
		if fatal != nil {
			return p.disable(fatal)
		}
		p.stats.setHeld(w.penalty.Held)
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
