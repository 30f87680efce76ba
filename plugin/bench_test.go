package main

import (
	"context"
	"io"
	"testing"
	"time"

	"auditplugin/internal/benchkit"
	"auditplugin/netlink"
)

// BenchmarkSamplerKernel is the sampler path on the real kernel: one op is
// one sample (sampleOnce: a status query with its deadline, then folding it
// into the window), and every fourth op also ends an update (take, collect,
// and the plugins.d text of every chart, written to io.Discard), as at
// update_every 1 with the default -sample-interval 250ms. Its
// cpu-%core@4Hz metric is therefore the sampler's and emitter's CPU per
// second at the default rate; run.sh prints it next to the raw round trip's.
func BenchmarkSamplerKernel(b *testing.B) {
	benchkit.LockQuiet(b)
	benchSampler(b, kernelClient(netlink.NewSenderLimit(netlink.DefaultMaxSenders)))
}

// BenchmarkSamplerFake is the same path over the request→reply fake: the
// plugin's own cost without the kernel's (and without root).
func BenchmarkSamplerFake(b *testing.B) {
	benchSampler(b, kernel(steadyKernel(steadyPayload), netlink.DefaultMaxSenders))
}

// sampleRate is the default number of samples a second.
const sampleRate = int(time.Second / defaultSampleInterval)

// steadySamples is what the growth estimator holds at the default rate.
const steadySamples = 20 * sampleRate

func benchSampler(b *testing.B, newClient func() (statusClient, error)) {
	s := newSampler(newClient, defaultSampleInterval, newStateLog(io.Discard), newGrowthEstimator(20*time.Second))
	defer func() {
		if s.client != nil {
			s.client.Close()
		}
	}()
	ctx := context.Background()
	if s.sampleOnce(ctx) || s.client == nil {
		b.Skipf("no status: %v", s.fatal)
	}
	first, _ := s.take()
	if first.samples == 0 {
		b.Fatal("first sample failed")
	}
	p := &plugin{out: newProtocol(io.Discard)}
	active := chartsFor(first.last.Fields, 250)
	exists := func(uint32) bool { return true }

	lat := make([]time.Duration, 0, 4096)
	samples, retries, waits := 0, 0, 0
	cpu0 := benchkit.CPUTime(false)
	for b.Loop() {
		// Back to back, the previous query's send may still be returning
		// (the kernel queues the reply from a thread it starts inside
		// sendto), and sampleOnce would skip the query as held; 250 ms
		// apart it never is. Wait, asleep so the wait costs no CPU.
		for s.client.Penalty().Held > 0 {
			time.Sleep(20 * time.Microsecond)
			waits++
		}
		start := time.Now()
		for {
			if s.sampleOnce(ctx) {
				b.Fatalf("sampler stopped: %v", s.fatal)
			}
			s.mu.Lock()
			n, failed := s.win.samples, s.win.failed
			s.mu.Unlock()
			if failed {
				b.Fatal("a sample failed")
			}
			if n > samples%sampleRate {
				break
			}
			retries++
		}
		samples++
		if samples%sampleRate == 0 {
			// Back to back, the -growth-window span would hold thousands of
			// samples; at the default rate it holds 80 (20 s at 4/s).
			if g := s.growth; len(g.samples) > steadySamples {
				g.samples = g.samples[len(g.samples)-steadySamples:]
			}
			w, _ := s.take()
			if err := p.emit(active, collect(w, exists), time.Second); err != nil {
				b.Fatal(err)
			}
		}
		lat = append(lat, time.Since(start))
	}
	benchkit.Report(b, lat, benchkit.CPUTime(false)-cpu0)
	b.ReportMetric(float64(retries)/float64(samples), "retries/op")
	b.ReportMetric(float64(waits)/float64(samples), "waits/op")
}
