package testkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ProcStatus is /proc/PID/status: each "Name:\tvalue" line, value trimmed.
type ProcStatus map[string]string

// ReadProcStatus reads /proc/PID/status.
func ReadProcStatus(pid int) (ProcStatus, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	return ParseProcStatus(b), nil
}

// ParseProcStatus parses the text of /proc/PID/status.
func ParseProcStatus(b []byte) ProcStatus {
	s := ProcStatus{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			s[k] = strings.TrimSpace(v)
		}
	}
	return s
}

// Int returns the first field of name as a decimal number: Threads, or
// VmRSS in kB.
func (s ProcStatus) Int(name string) (int64, bool) {
	f := strings.Fields(s[name])
	if len(f) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	return n, err == nil
}

// Hex returns name as a hexadecimal mask: CapBnd, CapEff, ...
func (s ProcStatus) Hex(name string) (uint64, bool) {
	n, err := strconv.ParseUint(s[name], 16, 64)
	return n, err == nil
}

// CheckCredentials checks that process pid runs with uid and gid as its
// real, effective, saved and file-system ids, and with exactly caps
// permitted and effective, none inheritable or ambient: how Netdata runs a
// plugin that has only its file capability.
func CheckCredentials(t testing.TB, pid, uid, gid int, caps uint64) {
	t.Helper()
	st, _ := ReadProcStatus(pid)
	want := map[string]string{
		"Uid":    strings.Repeat(strconv.Itoa(uid)+"\t", 3) + strconv.Itoa(uid),
		"Gid":    strings.Repeat(strconv.Itoa(gid)+"\t", 3) + strconv.Itoa(gid),
		"CapInh": fmt.Sprintf("%016x", 0),
		"CapPrm": fmt.Sprintf("%016x", caps),
		"CapEff": fmt.Sprintf("%016x", caps),
		"CapAmb": fmt.Sprintf("%016x", 0),
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("plugin pid %d: %s = %q, want %q", pid, k, st[k], v)
		}
	}
}
