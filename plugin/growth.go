package main

import "time"

// growthEstimator predicts when the backlog reaches its limit.
//
// It fits a straight line (least squares) through the backlog samples of the
// last span and extrapolates it to the limit: time = (limit - backlog) / slope.
// A fit over many samples ignores the single-sample jitter that a two-point
// difference would turn into wild estimates, and a bounded span forgets old
// growth quickly. When the slope is not positive there is no estimate; a
// backlog already at the limit is 0 seconds away.
type growthEstimator struct {
	span    time.Duration
	samples []backlogSample // oldest first, within span of the newest
}

type backlogSample struct {
	at      time.Time
	backlog uint32
}

// maxEstimate: farther than this is not a warning anyone can act on.
const maxEstimate = 24 * time.Hour

func newGrowthEstimator(span time.Duration) *growthEstimator {
	return &growthEstimator{span: span}
}

func (g *growthEstimator) add(at time.Time, backlog uint32) {
	g.samples = append(g.samples, backlogSample{at, backlog})
	cut := 0
	for cut < len(g.samples) && at.Sub(g.samples[cut].at) > g.span {
		cut++
	}
	// Reslice instead of copying the kept samples to the front on every
	// call: append reallocates when the array runs out, copying only what
	// is kept, so adding stays O(1) however many samples the span holds.
	g.samples = g.samples[cut:]
}

// estimate returns the time until the backlog reaches limit, and false when
// there is none (no limit, too few samples, not growing, or too far away).
func (g *growthEstimator) estimate(limit uint32) (time.Duration, bool) {
	n := len(g.samples)
	if limit == 0 || n == 0 {
		return 0, false
	}
	last := g.samples[n-1]
	if last.backlog >= limit {
		return 0, true
	}
	if n < 3 {
		return 0, false
	}
	// Least-squares slope, times relative to the first sample for precision.
	var sumT, sumB, sumTT, sumTB float64
	t0 := g.samples[0].at
	for _, s := range g.samples {
		t := s.at.Sub(t0).Seconds()
		b := float64(s.backlog)
		sumT += t
		sumB += b
		sumTT += t * t
		sumTB += t * b
	}
	fn := float64(n)
	den := fn*sumTT - sumT*sumT
	if den <= 0 {
		return 0, false
	}
	slope := (fn*sumTB - sumT*sumB) / den // records per second
	if slope <= 0 {
		return 0, false
	}
	secs := float64(limit-last.backlog) / slope
	d := time.Duration(secs * float64(time.Second))
	if secs > maxEstimate.Seconds() {
		return 0, false
	}
	return d, true
}
