package bench

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestProcReaders(t *testing.T) {
	ticks, onCPU, err := ProcCPU(os.Getpid())
	if err != nil || ticks < 0 || onCPU <= 0 {
		t.Errorf("ProcCPU(self) = %d ticks, %v, %v", ticks, onCPU, err)
	}
	rss, hwm, err := ProcMemory(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Errorf("ProcMemory(self) = %d, %d, %v", rss, hwm, err)
	}
	if _, _, err := ProcCPU(-1); err == nil {
		t.Error("ProcCPU of no process: no error")
	}
}

// table.awk: medians over rounds, ratios against the raw baseline, and
// MISSED where a target is missed.
func TestTable(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	const in = `BenchmarkStatusRaw-2  100  70000 ns/op  0.01 cpu-%core@4Hz  25 cpu-us/op  900 max-us  70 p50-us  200 p99-us
BenchmarkStatusRaw-2  100  90000 ns/op  0.01 cpu-%core@4Hz  25 cpu-us/op  900 max-us  80 p50-us  200 p99-us
BenchmarkStatusRaw-2  100  80000 ns/op  0.01 cpu-%core@4Hz  25 cpu-us/op  900 max-us  90 p50-us  200 p99-us
BenchmarkStatusOurs-2  100  200000 ns/op  0.02 cpu-%core@4Hz  50 cpu-us/op  900 max-us  85 p50-us  300 p99-us
--- SKIP: BenchmarkStatusAuditctl
    bench_test.go:85: auditctl not available
BenchmarkPlugin-2  1  0 ns/op  0.9 cpu-%core  0.8 cpu-%core-ticks  0.5 minloop-cpu-%core  1.6 x-minloop  0.4 minloop1-cpu-%core  2.1 x-minloop1  5 rss-MiB  6 hwm-MiB  1.9 binary-MiB  4 first-chart-ms  500 first-begin-ms  900 first-begin-max-ms
BenchmarkPlugin-2  1  0 ns/op  0.9 cpu-%core  0.8 cpu-%core-ticks  0.5 minloop-cpu-%core  2.0 x-minloop  0.4 minloop1-cpu-%core  2.3 x-minloop1  5 rss-MiB  6 hwm-MiB  1.9 binary-MiB  4 first-chart-ms  500 first-begin-ms  900 first-begin-max-ms
BenchmarkPlugin-2  1  0 ns/op  0.9 cpu-%core  0.8 cpu-%core-ticks  0.5 minloop-cpu-%core  1.8 x-minloop  0.4 minloop1-cpu-%core  2.2 x-minloop1  5 rss-MiB  6 hwm-MiB  1.9 binary-MiB  4 first-chart-ms  500 first-begin-ms  900 first-begin-max-ms
`
	cmd := exec.Command("awk", "-v", "header=test", "-v", "strict=1", "-f", "table.awk")
	cmd.Stdin = strings.NewReader(in)
	out, err := cmd.Output()
	if e, ok := err.(*exec.ExitError); !ok || e.ExitCode() != 3 {
		t.Errorf("awk exit %v, want 3 (strict, targets missed)", err)
	}
	got := string(out)
	for _, want := range []string{
		"mean 80 us, p50 80 us", // medians of the three rounds
		"mean 2.50x, p50 1.06x", // ours against raw: mean misses 1.5x
		"skipped: auditctl not available",
		"0.900 % of one core",
		"1.80x the minimal loop (2.20x on one P), median of 3", // medians of the rounds' ratios; misses 1.2x
		"3 target(s) MISSED",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "MISSED"); n != 4 { // three rows and the summary
		t.Errorf("%d MISSED, want 4:\n%s", n, got)
	}
}
