// Package bench measures what "fast and never stuck" costs: one audit status
// query by our client against a raw AUDIT_GET round trip, go-libaudit's
// GetStatus and `auditctl -s`, and the whole plugin's CPU, memory, binary
// size and time to first data on the real kernel.
//
// Everything is in benchmarks (go test -run '^$' -bench . ./bench/); run.sh
// runs them with the sampler benchmarks of package plugin and prints one
// table with ratios against the baselines of the same run. The benchmarks
// need root and the real kernel; they skip with the reason otherwise.
//
// raw.go and measure.go hold the helpers (the kernel lock, CPU time and
// the report it shares with package plugin's benchmarks are in
// internal/benchkit); the benchmarks are in
// bench_test.go (queries) and plugin_test.go (the whole plugin).
package bench
