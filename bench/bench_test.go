package bench

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"auditplugin/internal/benchkit"
	"auditplugin/netlink"

	libaudit "github.com/elastic/go-libaudit/v2"
)

// queryTimeout bounds one query; the sampler uses its interval (250 ms).
const queryTimeout = time.Second

// measure runs op once per b.Loop iteration and reports latency and CPU.
// children adds the CPU time of waited-for child processes (auditctl).
func measure(b *testing.B, children bool, op func() error) {
	b.Helper()
	lat := make([]time.Duration, 0, 4096)
	cpu0 := benchkit.CPUTime(children)
	for b.Loop() {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	benchkit.Report(b, lat, benchkit.CPUTime(children)-cpu0)
}

// BenchmarkStatusRaw is the baseline: a raw AUDIT_GET round trip.
func BenchmarkStatusRaw(b *testing.B) {
	benchkit.LockQuiet(b)
	c, err := DialRaw()
	if err != nil {
		b.Skipf("raw audit socket: %v", err)
	}
	defer c.Close()
	measure(b, false, func() error { _, err := c.Status(); return err })
}

// BenchmarkStatusOurs is netlink.Client.Status as the sampler calls it: a
// context with a deadline per query, the send on a goroutine of its own.
func BenchmarkStatusOurs(b *testing.B) {
	benchkit.LockQuiet(b)
	c, err := netlink.Open(nil)
	if err != nil {
		b.Skipf("netlink.Open: %v", err)
	}
	defer c.Close()
	measure(b, false, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
		defer cancel()
		_, err := c.Status(ctx)
		return err
	})
}

// BenchmarkStatusLibaudit is go-libaudit's AuditClient.GetStatus: it polls
// with non-blocking receives and sleeps 50 ms whenever the reply is late.
func BenchmarkStatusLibaudit(b *testing.B) {
	benchkit.LockQuiet(b)
	c, err := libaudit.NewAuditClient(nil)
	if err != nil {
		b.Skipf("go-libaudit: %v", err)
	}
	defer c.Close()
	measure(b, false, func() error { _, err := c.GetStatus(); return err })
}

// BenchmarkStatusAuditctl runs `auditctl -s` (Debian's auditd package) as a
// subprocess, the way a shell-script collector would. $AUDITCTL names the
// binary (run.sh unpacks one without installing the package, so no auditd is
// ever started) and $AUDITCTL_LD_LIBRARY_PATH its libraries; otherwise
// auditctl is looked up in $PATH.
func BenchmarkStatusAuditctl(b *testing.B) {
	path := os.Getenv("AUDITCTL")
	if path == "" {
		p, err := exec.LookPath("auditctl")
		if err != nil {
			b.Skip("auditctl not available (Debian package auditd; bench/run.sh unpacks it without installing): set AUDITCTL or install it")
		}
		path = p
	}
	env := os.Environ()
	if lib := os.Getenv("AUDITCTL_LD_LIBRARY_PATH"); lib != "" {
		env = append(env, "LD_LIBRARY_PATH="+lib)
	}
	run := func() error {
		cmd := exec.Command(path, "-s")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("%s -s: %v: %s", path, err, out)
		}
		return nil
	}
	// auditctl -v exits 0 when the binary and its libraries load.
	cmd := exec.Command(path, "-v")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Skipf("%s does not run here: %v: %s", path, err, out)
	}
	benchkit.LockQuiet(b)
	measure(b, true, run)
}
