package main

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// feed adds backlog values at a fixed step from t0.
func feed(g *growthEstimator, step time.Duration, backlog ...float64) {
	for i, b := range backlog {
		g.add(t0.Add(time.Duration(i)*step), uint32(math.Round(b)))
	}
}

func TestGrowthSteady(t *testing.T) {
	g := newGrowthEstimator(20 * time.Second)
	var series []float64
	for i := 0; i <= 20; i++ { // 10 records/s for 5 s at 250 ms
		series = append(series, float64(i)*2.5)
	}
	feed(g, 250*time.Millisecond, series...)
	d, ok := g.estimate(1000)
	if !ok || math.Abs(d.Seconds()-95) > 1 {
		t.Errorf("estimate %v %v, want about 95 s (950 records left at 10/s)", d, ok)
	}

	// From 0: the first five samples, 10 records/s, about 96 s to 1000.
	g = newGrowthEstimator(20 * time.Second)
	feed(g, time.Second, 0, 10, 20, 30, 40)
	if d, ok := g.estimate(1000); !ok || math.Abs(d.Seconds()-96) > 1 {
		t.Errorf("estimate %v %v, want about 96 s", d, ok)
	}
}

func TestGrowthNone(t *testing.T) {
	for name, series := range map[string][]float64{
		"flat":      {50, 50, 50, 50, 50},
		"shrinking": {500, 400, 300, 200, 100},
		"empty":     {},
		"one":       {10},
		"two":       {10, 20},
		"four":      {10, 20, 30, 40}, // too few for a line
	} {
		g := newGrowthEstimator(20 * time.Second)
		feed(g, time.Second, series...)
		d, ok := g.estimate(1000)
		if name == "empty" && ok {
			t.Errorf("%s: estimate %v, want none", name, d)
		} else if name != "empty" && (!ok || d != maxEstimate) {
			t.Errorf("%s: estimate %v %v, want %v (not filling)", name, d, ok, maxEstimate)
		}
	}
	g := newGrowthEstimator(20 * time.Second)
	feed(g, time.Second, 0, 10, 20)
	if d, ok := g.estimate(0); ok {
		t.Errorf("no limit: estimate %v, want none", d)
	}
	// 10 records per hour: more than an hour away is capped.
	g = newGrowthEstimator(time.Hour * 5)
	feed(g, time.Hour, 0, 10, 20, 30, 40, 50)
	if d, ok := g.estimate(1000); !ok || d != maxEstimate {
		t.Errorf("slow growth: estimate %v %v, want %v", d, ok, maxEstimate)
	}
}

func TestGrowthAtLimit(t *testing.T) {
	for _, series := range [][]float64{{1000}, {900, 1000}, {500, 1200}, {1000, 1000, 1000}} {
		g := newGrowthEstimator(20 * time.Second)
		feed(g, time.Second, series...)
		if d, ok := g.estimate(1000); !ok || d != 0 {
			t.Errorf("%v: estimate %v %v, want 0 (full now)", series, d, ok)
		}
	}
}

// A least-squares fit rides out jitter that a two-point slope would turn into
// wild or missing estimates: here the last step is even downwards.
func TestGrowthNoisy(t *testing.T) {
	g := newGrowthEstimator(20 * time.Second)
	noise := []float64{7, -9, 4, -6, 9, -3, 8, -8, 2, -5, 6, -7, 5, -2, 9, -9, 3, -4, 8, -10}
	var series []float64
	for i, n := range noise { // 20 records/s plus noise, every 250 ms
		series = append(series, 100+float64(i)*5+n)
	}
	feed(g, 250*time.Millisecond, series...)
	d, ok := g.estimate(1000)
	// True value: about (1000-190)/20 = 40 s.
	if !ok || d < 30*time.Second || d > 55*time.Second {
		t.Errorf("estimate %v %v, want about 40 s", d, ok)
	}
}

// Samples older than the span are dropped: growth that stopped long ago no
// longer counts, and memory stays bounded.
func TestGrowthSpanTrims(t *testing.T) {
	g := newGrowthEstimator(5 * time.Second)
	var series []float64
	for i := 0; i < 10; i++ { // fast growth for 10 s…
		series = append(series, float64(i*50))
	}
	for i := 0; i < 10; i++ { // …then flat for 10 s
		series = append(series, 450)
	}
	feed(g, time.Second, series...)
	if len(g.samples) != 6 {
		t.Errorf("%d samples kept, want 6 (the last 5 s, both ends)", len(g.samples))
	}
	if d, ok := g.estimate(1000); !ok || d != maxEstimate {
		t.Errorf("estimate %v %v from growth that ended 10 s ago, want %v", d, ok, maxEstimate)
	}
	for i := 0; i < 1000; i++ {
		g.add(t0.Add(time.Minute+time.Duration(i)*250*time.Millisecond), 1)
	}
	if len(g.samples) > 21 {
		t.Errorf("%d samples kept for a 5 s span at 250 ms", len(g.samples))
	}
}

// FuzzGrowthEstimate: whatever the samples, the estimate is between 0 and
// the cap, there is one exactly when there is a limit and a sample, and a
// backlog at or over the limit is 0 s away.
func FuzzGrowthEstimate(f *testing.F) {
	f.Add([]byte{0, 10, 20, 30, 40, 50}, uint16(1000), uint8(250))
	f.Add([]byte{0, 0, 0, 0, 255, 0, 0}, uint16(300), uint8(100))
	f.Add([]byte{5, 1, 4, 2, 3, 0, 5}, uint16(100), uint8(1))
	f.Fuzz(func(t *testing.T, backlog []byte, limit uint16, stepMs uint8) {
		g := newGrowthEstimator(20 * time.Second)
		step := time.Duration(stepMs) * time.Millisecond
		var last uint32
		for i, b := range backlog {
			last = uint32(b) * 40
			g.add(t0.Add(time.Duration(i)*step), last)
		}
		d, ok := g.estimate(uint32(limit))
		if ok != (limit > 0 && len(backlog) > 0) {
			t.Fatalf("ok %v with limit %d and %d samples", ok, limit, len(backlog))
		}
		if !ok {
			return
		}
		if d < 0 || d > maxEstimate {
			t.Fatalf("estimate %v outside [0, %v]", d, maxEstimate)
		}
		if last >= uint32(limit) && d != 0 {
			t.Fatalf("backlog %d at limit %d: estimate %v, want 0", last, limit, d)
		}
	})
}
