package netlink

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelHZ finds CONFIG_HZ, the unit of backlog_wait_time and
// backlog_wait_time_actual (jiffies). sysconf(_SC_CLK_TCK) is USER_HZ, not
// CONFIG_HZ, so the kernel config is the only reliable source.
// It returns the file the value came from.
func KernelHZ() (hz int, source string, err error) {
	var uts unix.Utsname
	release := ""
	if unix.Uname(&uts) == nil {
		release = unix.ByteSliceToString(uts.Release[:])
	}
	var errs []error
	for _, path := range []string{"/proc/config.gz", "/boot/config-" + release} {
		hz, err := hzFromFile(path)
		if err == nil {
			return hz, path, nil
		}
		errs = append(errs, err)
	}
	return 0, "", fmt.Errorf("find CONFIG_HZ: %w", errors.Join(errs...))
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
