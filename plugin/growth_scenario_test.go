package main

import (
	"math"
	"math/rand"
	"testing"
	"time"
)

// These tests drive the estimator with backlog shapes sampled as the plugin
// samples them (every 250 ms) and evaluate the shipped alert's rule on the
// per-second chart it produces: linux_audit_time_to_overflow looks up the
// max of the last 5 s every 5 s, with the last utilization above 10 %.
// The same shapes run on the real kernel and a real Netdata in
// e2e/leadtime_test.go; this is the fast, exhaustive check of the estimator
// (every evaluation phase, several seeds).

const (
	scenLimit    = 8000
	scenSample   = 250 * time.Millisecond
	alertLookup  = 5 // seconds: lookup max -5s
	alertEveryS  = 5 // seconds: every 5s
	dataLatencyS = 1 // a collected second is visible to health a second later
)

type scenario struct {
	name   string
	dur    float64                 // seconds
	shape  func(t float64) float64 // backlog in records at time t
	noise  float64                 // uniform ± records per sample
	cross  float64                 // time the shape passes 10 %, if it does
	fill   float64                 // time it reaches the limit (first loss), if it does
	stopAt float64                 // time the growth stops, if it does
}

type point struct{ est, util float64 } // per second: estimate (s), last utilization (%)

// run samples the scenario and returns one chart point per second.
func (sc scenario) run(seed int64) []point {
	rng := rand.New(rand.NewSource(seed))
	g := newGrowthEstimator(20 * time.Second)
	var pts []point
	per := int(time.Second / scenSample)
	for i := 0; float64(i)*scenSample.Seconds() <= sc.dur; i++ {
		t := float64(i) * scenSample.Seconds()
		b := sc.shape(t) + (rng.Float64()*2-1)*sc.noise
		b = math.Max(0, math.Min(scenLimit, math.Round(b)))
		g.add(t0.Add(time.Duration(i)*scenSample), uint32(b))
		if i%per == 0 {
			d, ok := g.estimate(scenLimit)
			if !ok {
				panic("no estimate with a limit")
			}
			pts = append(pts, point{est: d.Seconds(), util: b * 100 / scenLimit})
		}
	}
	return pts
}

// alertRun evaluates the shipped rule on pts with its first evaluation at
// second phase, and returns the first WARNING and CRITICAL times (-1: none)
// and the times it went back to CLEAR.
func alertRun(pts []point, phase int) (warn, crit int, clears []int) {
	warn, crit = -1, -1
	status := 0 // 0 CLEAR, 1 WARNING, 2 CRITICAL
	for e := phase; e < len(pts); e += alertEveryS {
		last := e - dataLatencyS
		if last-alertLookup+1 < 0 {
			continue
		}
		mx := 0.0
		for s := last - alertLookup + 1; s <= last; s++ {
			mx = math.Max(mx, pts[s].est)
		}
		hot := pts[last].util > 10
		wt, ct := 600.0, 60.0
		if status >= 1 {
			wt = 720
		}
		if status == 2 {
			ct = 90
		}
		next := 0
		switch {
		case hot && mx < ct:
			next = 2
		case hot && mx < wt:
			next = 1
		}
		if next >= 1 && warn < 0 {
			warn = e
		}
		if next == 2 && crit < 0 {
			crit = e
		}
		if next == 0 && status != 0 {
			clears = append(clears, e)
		}
		status = next
	}
	return warn, crit, clears
}

// ramp fills the backlog from empty in fill seconds, starting at start.
func ramp(start, fill float64) func(float64) float64 {
	return func(t float64) float64 {
		return math.Max(0, math.Min(scenLimit, (t-start)*scenLimit/fill))
	}
}

func TestGrowthScenarioSteadyFills(t *testing.T) {
	var scs []scenario
	for _, fill := range []float64{30, 60, 120, 300, 600} {
		start := 30.0
		scs = append(scs,
			scenario{name: "ramp", dur: start + fill, shape: ramp(start, fill), cross: start + fill/10, fill: start + fill},
			// Sampling noise of ±0.5 % of the limit (the kernel's backlog moves
			// in steps of one audit event's records).
			scenario{name: "noisy ramp", dur: start + fill, shape: ramp(start, fill), noise: scenLimit / 200, cross: start + fill/10, fill: start + fill})
	}
	// A fill that slows to a third at half: 60 s, then 180 s more.
	slow := func(t float64) float64 {
		const start, half = 30.0, 30.0
		switch {
		case t < start:
			return 0
		case t < start+half:
			return (t - start) * scenLimit / 2 / half
		}
		return math.Min(scenLimit, scenLimit/2+(t-start-half)*scenLimit/2/(3*half))
	}
	scs = append(scs, scenario{name: "slows to a third", dur: 150, shape: slow, cross: 36, fill: 150})
	for _, sc := range scs {
		fill := sc.fill - 30
		for seed := int64(1); seed <= 3; seed++ {
			pts := sc.run(seed)
			for phase := 0; phase < alertEveryS; phase++ {
				warn, crit, _ := alertRun(pts, phase)
				// The targets: WARNING within 15 s of 10 %, before
				// the utilization alert (50 %); CRITICAL before the first loss
				// for fills of 60 s or more.
				half := 30 + fill/2
				if sc.name == "slows to a third" {
					half = 60
				}
				if warn < 0 || float64(warn) > sc.cross+15 || float64(warn) >= half {
					t.Errorf("%s %.0f s seed %d phase %d: WARNING at %d s, 10 %% at %.0f s, 50 %% at %.0f s", sc.name, fill, seed, phase, warn, sc.cross, half)
				}
				if fill >= 60 && (crit < 0 || float64(crit) >= sc.fill) {
					t.Errorf("%s %.0f s seed %d phase %d: CRITICAL at %d s, full at %.0f s", sc.name, fill, seed, phase, crit, sc.fill)
				}
			}
		}
	}
}

// No false alarms: a burst to 30 % that drains within 2 s, and jitter
// between 0 and 5 %, never raise the alert.
func TestGrowthScenarioNoFalseAlarms(t *testing.T) {
	burst := func(rise float64) func(float64) float64 {
		return func(t float64) float64 {
			const at, peak, drain = 30.0, 0.3 * scenLimit, 2.0
			switch {
			case t < at:
				return 0
			case t < at+rise:
				return (t - at) / rise * peak
			case t < at+drain:
				return peak * (at + drain - t) / (drain - rise)
			}
			return 0
		}
	}
	jitter := func(float64) float64 { return 0.025 * scenLimit }
	for _, sc := range []scenario{
		{name: "step burst", dur: 90, shape: burst(0.01)},
		{name: "1 s ramp burst", dur: 90, shape: burst(1)},
		{name: "jitter 0-5 %", dur: 600, shape: jitter, noise: 0.025 * scenLimit},
	} {
		for seed := int64(1); seed <= 5; seed++ {
			pts := sc.run(seed)
			for phase := 0; phase < alertEveryS; phase++ {
				if warn, crit, _ := alertRun(pts, phase); warn >= 0 || crit >= 0 {
					t.Errorf("%s seed %d phase %d: WARNING at %d s, CRITICAL at %d s", sc.name, seed, phase, warn, crit)
				}
			}
			// The chart too says "not filling" nearly all the time.
			capped := 0
			for _, p := range pts {
				if p.est == maxEstimate.Seconds() {
					capped++
				}
			}
			if capped < len(pts)*95/100 {
				t.Errorf("%s seed %d: %d of %d seconds estimated short", sc.name, seed, len(pts)-capped, len(pts))
			}
		}
	}
}

// A growth that stops (the backlog stays at 40 %) clears within
// growthClearDelay, the delay the README and health.d/audit.conf document.
func TestGrowthScenarioStopClears(t *testing.T) {
	const growthClearDelay = 30 // seconds: 20 s window + 5 s lookup + 5 s every
	stop := func(t float64) float64 {
		return math.Min(0.4*scenLimit, ramp(30, 120)(t))
	}
	sc := scenario{name: "stops at 40 %", dur: 150, shape: stop, noise: scenLimit / 200, stopAt: 30 + 0.4*120}
	for seed := int64(1); seed <= 3; seed++ {
		pts := sc.run(seed)
		for phase := 0; phase < alertEveryS; phase++ {
			warn, _, clears := alertRun(pts, phase)
			if warn < 0 || len(clears) != 1 || float64(clears[0]) > sc.stopAt+growthClearDelay {
				t.Errorf("seed %d phase %d: WARNING at %d, CLEAR at %v; growth stopped at %.0f s", seed, phase, warn, clears, sc.stopAt)
			}
		}
	}
}
