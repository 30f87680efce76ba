package host

import (
	"bufio"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseHZ(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   int // 0: an error
	}{
		{"250", "CONFIG_HZ_250=y\nCONFIG_HZ=250\n", 250},
		{"1000 among other lines", "# comment\nCONFIG_HZ_PERIODIC=y\nCONFIG_HZ_1000=y\nCONFIG_HZ=1000\nCONFIG_SCHED_HRTICK=y\n", 1000},
		{"no trailing newline", "CONFIG_HZ=100", 100},
		{"missing", "CONFIG_HZ_250=y\n# CONFIG_HZ is not set\n", 0},
		{"empty config", "", 0},
		{"not a number", "CONFIG_HZ=fast\n", 0},
		{"empty value", "CONFIG_HZ=\n", 0},
		{"zero", "CONFIG_HZ=0\n", 0},
		{"negative", "CONFIG_HZ=-250\n", 0},
		{"first line wins", "CONFIG_HZ=300\nCONFIG_HZ=100\n", 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHZ(strings.NewReader(tt.config))
			if tt.want == 0 {
				if err == nil {
					t.Errorf("parseHZ = %d, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseHZ = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestHZFromFile(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "config-6.18")
	if err := os.WriteFile(plain, []byte("CONFIG_HZ=300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gz := filepath.Join(dir, "config.gz")
	f, err := os.Create(gz)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte("CONFIG_HZ_1000=y\nCONFIG_HZ=1000\n"))
	zw.Close()
	f.Close()
	notGz := filepath.Join(dir, "plain.gz") // a .gz name on an uncompressed file
	if err := os.WriteFile(notGz, []byte("CONFIG_HZ=300\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if hz, err := hzFromFile(plain); err != nil || hz != 300 {
		t.Errorf("hzFromFile(plain) = %d, %v; want 300", hz, err)
	}
	if hz, err := hzFromFile(gz); err != nil || hz != 1000 {
		t.Errorf("hzFromFile(gz) = %d, %v; want 1000", hz, err)
	}
	if hz, err := hzFromFile(notGz); err == nil {
		t.Errorf("hzFromFile(not gzip) = %d, want an error", hz)
	}
	if hz, err := hzFromFile(filepath.Join(dir, "missing")); err == nil {
		t.Errorf("hzFromFile(missing) = %d, want an error", hz)
	}
}

// TestKernelHZ reads this machine's CONFIG_HZ (250 on the project's machines)
// and checks it against the Kconfig choice line CONFIG_HZ_<n>=y, read
// independently from the same file.
func TestKernelHZ(t *testing.T) {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		t.Skipf("no /proc/config.gz (kernel built without CONFIG_IKCONFIG_PROC): %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	choice := regexp.MustCompile(`^CONFIG_HZ_([0-9]+)=y$`)
	want := 0
	for sc := bufio.NewScanner(zr); sc.Scan(); {
		if m := choice.FindStringSubmatch(sc.Text()); m != nil {
			want, _ = strconv.Atoi(m[1])
		}
	}
	if want == 0 {
		t.Fatal("/proc/config.gz has no CONFIG_HZ_<n>=y line")
	}

	hz, source, err := kernelHZ(defaultConfigs(), coarseResolution)
	if err != nil {
		t.Fatal(err)
	}
	if hz != want || source != "/proc/config.gz" {
		t.Errorf("KernelHZ() = %d from %s, want %d from /proc/config.gz", hz, source, want)
	}
	t.Logf("CONFIG_HZ=%d", hz)
}

func TestHZFromResolution(t *testing.T) {
	for _, tt := range []struct {
		res  time.Duration
		want int // 0: an error
	}{
		{4 * time.Millisecond, 250},
		{10 * time.Millisecond, 100},
		{time.Millisecond, 1000},
		{3333333, 300},
		{1000000 * 1000 / 1024, 1024},
		{41666666, 24},
		{time.Nanosecond, 0}, // high resolution, not a jiffy
		{0, 0},
		{-time.Millisecond, 0},
		{time.Second, 0},
	} {
		got, err := hzFromResolution(tt.res)
		if (tt.want == 0) != (err != nil) || got != tt.want {
			t.Errorf("hzFromResolution(%v) = %d, %v; want %d", tt.res, got, err, tt.want)
		}
	}
}

// Without a readable config, HZ comes from the clock; both failing is one
// error naming every source.
func TestKernelHZFallback(t *testing.T) {
	missing := []string{filepath.Join(t.TempDir(), "config.gz"), filepath.Join(t.TempDir(), "config-x")}
	hz, src, err := kernelHZ(missing, func() (time.Duration, error) { return 4 * time.Millisecond, nil })
	if err != nil || hz != 250 || !strings.Contains(src, "clock_getres") {
		t.Errorf("kernelHZ = %d, %q, %v; want 250 from clock_getres", hz, src, err)
	}
	_, _, err = kernelHZ(missing, func() (time.Duration, error) { return time.Nanosecond, nil })
	if err == nil || !strings.Contains(err.Error(), "config.gz") || !strings.Contains(err.Error(), "clock_getres") {
		t.Errorf("err = %v, want one naming the configs and clock_getres", err)
	}
	// A readable config wins over the clock.
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, []byte("CONFIG_HZ=1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if hz, src, err := kernelHZ([]string{cfg}, func() (time.Duration, error) { return 4 * time.Millisecond, nil }); hz != 1000 || src != cfg || err != nil {
		t.Errorf("kernelHZ = %d, %q, %v; want 1000 from %s", hz, src, err, cfg)
	}
}

// On this machine: the clock agrees with the kernel config when there is one.
func TestKernelHZClockMatchesConfig(t *testing.T) {
	hzClock, err := KernelHZFrom([]string{})
	if err != nil {
		t.Fatalf("no HZ from the clock: %v", err)
	}
	hzConfig, src, err := kernelHZ(defaultConfigs(), coarseResolution)
	if err != nil || src == "clock_getres(CLOCK_MONOTONIC_COARSE)" {
		t.Skipf("no kernel config here to compare with (%v); the clock says HZ %d", err, hzClock)
	}
	if hzClock != hzConfig {
		t.Errorf("HZ %d from the clock, %d from %s", hzClock, hzConfig, src)
	}
	t.Logf("HZ %d from %s and from the clock", hzConfig, src)
}
