// Package host inspects the machine the plugin runs on, not the kernel's
// audit subsystem: CONFIG_HZ (the unit of the backlog wait times) and
// whether we run in the initial PID namespace (which decides what an EPERM
// from the kernel means). It reads /proc, /boot and clocks; package netlink,
// the kernel client, only talks netlink.
package host

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// KernelHZ finds CONFIG_HZ, the unit of backlog_wait_time and
// backlog_wait_time_actual (jiffies).
// sysconf(_SC_CLK_TCK) is USER_HZ, not CONFIG_HZ. The kernel config is read
// first (/proc/config.gz, /boot/config-$(uname -r)); containers rarely have
// either, so the fallback is the resolution of CLOCK_MONOTONIC_COARSE, which
// Linux ticks once per jiffy and reports as TICK_NSEC to anyone, in any
// namespace.
func KernelHZ() (int, error) {
	return KernelHZFrom(defaultConfigs())
}

// KernelHZFrom is KernelHZ with other config files than the default ones:
// the plugin's -kernel-config option (test builds) shows the fallback.
func KernelHZFrom(configs []string) (int, error) {
	hz, _, err := kernelHZ(configs, coarseResolution)
	return hz, err
}

func defaultConfigs() []string {
	var uts unix.Utsname
	release := ""
	if unix.Uname(&uts) == nil {
		release = unix.ByteSliceToString(uts.Release[:])
	}
	return []string{"/proc/config.gz", "/boot/config-" + release}
}

// kernelHZ also says where HZ came from, for tests.
func kernelHZ(configs []string, resolution func() (time.Duration, error)) (int, string, error) {
	var errs []error
	for _, path := range configs {
		hz, err := hzFromFile(path)
		if err == nil {
			return hz, path, nil
		}
		errs = append(errs, err)
	}
	res, err := resolution()
	if err == nil {
		var hz int
		if hz, err = hzFromResolution(res); err == nil {
			return hz, "clock_getres(CLOCK_MONOTONIC_COARSE)", nil
		}
	}
	errs = append(errs, fmt.Errorf("clock_getres(CLOCK_MONOTONIC_COARSE): %w", err))
	return 0, "", fmt.Errorf("find CONFIG_HZ: %w", errors.Join(errs...))
}

func coarseResolution() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGetres(unix.CLOCK_MONOTONIC_COARSE, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}

// hzFromResolution turns a jiffy's length into HZ. TICK_NSEC is 1e9/HZ
// rounded, so rounding 1e9/res gives HZ back exactly (250 from 4 ms, 300
// from 3.333333 ms). Kernels accept HZ from 24 (some ARM boards) to 1200;
// outside a wider band the clock is not ticking in jiffies (a tickless
// resolution of 1 ns) and the value would be nonsense.
func hzFromResolution(res time.Duration) (int, error) {
	if res <= 0 {
		return 0, fmt.Errorf("resolution %v", res)
	}
	hz := int(math.Round(float64(time.Second) / float64(res)))
	if hz < 10 || hz > 10000 {
		return 0, fmt.Errorf("resolution %v is not a jiffy (HZ %d)", res, hz)
	}
	return hz, nil
}

func hzFromFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		r = gz
	}
	hz, err := parseHZ(r)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return hz, nil
}

// parseHZ reads CONFIG_HZ=N from a kernel config.
func parseHZ(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ=")
		if !ok {
			continue
		}
		hz, err := strconv.Atoi(v)
		if err != nil || hz <= 0 {
			return 0, fmt.Errorf("bad CONFIG_HZ value %q", v)
		}
		return hz, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no CONFIG_HZ line")
}
