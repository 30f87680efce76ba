package main

import (
	"math"
	"time"
)

// growthEstimator predicts when the backlog reaches its limit.
//
// It fits straight lines (least squares) through the backlog samples of the
// last 1/10, 1/4, 1/2 and all of its span (2, 5, 10 and 20 s by default) and
// extrapolates each to the limit: time = (limit - backlog) / slope. A fit
// counts only when it describes steady growth: a positive slope, a line
// that explains most of the variation (R² >= minR2, which rejects jitter and
// a burst's step or spike) and a rise of at least minRisePerMil of the limit
// across the fit (which rejects a line through a few records of noise). The
// estimate is the shortest of the fits that count: the short fits see a
// fresh growth within a couple of seconds, the long ones see a slow growth
// that a short one cannot tell from noise.
//
// Without steady growth the estimate is maxEstimate ("not filling, or more
// than an hour away") rather than no value: Netdata's lookups over a window
// that holds empty points give no usable value, which delayed the alert
// until the window was full of estimates.
type growthEstimator struct {
	span    time.Duration
	samples []backlogSample // oldest first, within span of the newest
}

type backlogSample struct {
	at      time.Time
	backlog uint32
}

const (
	// maxEstimate caps the estimate: farther away is no warning anyone acts
	// on, and the chart needs a value that means "not filling".
	maxEstimate = time.Hour
	// minR2: the share of the backlog's variation a straight line must
	// explain. A steady growth with sampling noise explains > 0.95; a burst
	// (a step, or a spike that drains) and random jitter stay far below.
	minR2 = 0.8
	// minRisePerMil: the fitted rise across a fit, in thousandths of the limit.
	minRisePerMil = 10
	// minFitSamples: fewer samples make no line worth extrapolating.
	minFitSamples = 5
)

// fitFractions are the fits' spans as fractions of the estimator's span.
var fitFractions = []float64{0.1, 0.25, 0.5, 1}

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

// estimate returns the time until the backlog reaches limit: 0 when it is
// full, maxEstimate when it is not growing steadily. It returns false only
// when there is nothing to estimate (no limit, or no sample).
func (g *growthEstimator) estimate(limit uint32) (time.Duration, bool) {
	n := len(g.samples)
	if limit == 0 || n == 0 {
		return 0, false
	}
	last := g.samples[n-1]
	if last.backlog >= limit {
		return 0, true
	}
	best := maxEstimate.Seconds()
	for _, f := range fitFractions {
		span := time.Duration(float64(g.span) * f)
		first := n - 1
		for first > 0 && last.at.Sub(g.samples[first-1].at) <= span {
			first--
		}
		slope, ok := steadySlope(g.samples[first:], limit)
		if !ok {
			continue
		}
		best = min(best, float64(limit-last.backlog)/slope)
	}
	return time.Duration(best * float64(time.Second)), true
}

// steadySlope is the least-squares slope (records per second) of samples,
// and whether it describes steady growth (see growthEstimator).
func steadySlope(samples []backlogSample, limit uint32) (float64, bool) {
	n := len(samples)
	if n < minFitSamples {
		return 0, false
	}
	// Times relative to the first sample, for precision.
	var sumT, sumB float64
	t0 := samples[0].at
	for _, s := range samples {
		sumT += s.at.Sub(t0).Seconds()
		sumB += float64(s.backlog)
	}
	fn := float64(n)
	meanT, meanB := sumT/fn, sumB/fn
	var stt, sbb, stb float64
	for _, s := range samples {
		dt := s.at.Sub(t0).Seconds() - meanT
		db := float64(s.backlog) - meanB
		stt += dt * dt
		sbb += db * db
		stb += dt * db
	}
	if stt <= 0 || sbb <= 0 || stb <= 0 {
		return 0, false // one instant, flat, or not growing
	}
	slope := stb / stt
	r2 := stb * stb / (stt * sbb)
	duration := samples[n-1].at.Sub(t0).Seconds()
	rise := slope * duration
	if r2 < minR2 || rise*1000 < minRisePerMil*float64(limit) || math.IsInf(slope, 0) {
		return 0, false
	}
	return slope, true
}
