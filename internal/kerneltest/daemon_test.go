package kerneltest

import (
	"math"
	"testing"
	"time"
)

// TestIntegrationReadingDaemonGrowsLinearly is what the lead-time tests rely
// on: a paced generator and a daemon reading at half its rate make the
// backlog grow in a straight line, and the restore stops both and puts
// everything back.
func TestIntegrationReadingDaemonGrowsLinearly(t *testing.T) {
	RequireRoot(t)
	before := lockedStatus(t)
	t.Run("kernel", func(t *testing.T) {
		k := Setup(t, Settings{Enabled: 1, BacklogLimit: 20000})
		dir := k.scratchDir()
		k.AddRule(dir, "auditplugin-kerneltest-daemon")
		d := k.RegisterReadingDaemon(math.Inf(1))
		g := k.StartPaced(dir, 10, 50*time.Millisecond, time.Minute)
		// Generation rate, with a daemon that keeps up.
		time.Sleep(time.Second)
		r0, t0 := d.Read(), time.Now()
		time.Sleep(3 * time.Second)
		gen := float64(d.Read()-r0) / time.Since(t0).Seconds()
		s, err := ReadStatus()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("generation %.0f records/s, backlog %d while the daemon keeps up", gen, s.Backlog)
		if gen < 50 || s.Backlog > 100 {
			t.Fatalf("generation %.0f records/s, backlog %d", gen, s.Backlog)
		}
		d.SetRate(gen / 2)
		r1, t1 := d.Read(), time.Now()
		var xs, ys []float64
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			s, err := ReadStatus()
			if err != nil {
				t.Fatal(err)
			}
			xs = append(xs, time.Since(start).Seconds())
			ys = append(ys, float64(s.Backlog))
			time.Sleep(250 * time.Millisecond)
		}
		slope, r2 := fit(xs, ys)
		read := float64(d.Read()-r1) / time.Since(t1).Seconds()
		t.Logf("daemon set to %.0f records/s read %.0f: backlog %v -> %v, slope %.0f records/s, R² %.3f", gen/2, read, ys[0], ys[len(ys)-1], slope, r2)
		// The generator's rate varies with the machine's load (a shell
		// loop); the daemon's is ours. Growth must be a straight line.
		if read > gen/2*1.1 || read < gen/2*0.9 {
			t.Errorf("the daemon read %.0f records/s, set to %.0f", read, gen/2)
		}
		if r2 < 0.95 || slope < gen/5 {
			t.Errorf("backlog growth slope %.0f records/s R² %.3f, want a straight line rising about %.0f records/s", slope, r2, gen/2)
		}
		g.Stop()
	})
	sameSettings(t, "after cleanup", lockedStatus(t), before)
	noRecoveryFile(t)
}

func fit(xs, ys []float64) (slope, r2 float64) {
	n := float64(len(xs))
	var mx, my float64
	for i := range xs {
		mx += xs[i] / n
		my += ys[i] / n
	}
	var sxx, syy, sxy float64
	for i := range xs {
		sxx += (xs[i] - mx) * (xs[i] - mx)
		syy += (ys[i] - my) * (ys[i] - my)
		sxy += (xs[i] - mx) * (ys[i] - my)
	}
	return sxy / sxx, sxy * sxy / (sxx * syy)
}
