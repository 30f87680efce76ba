package netlink

import (
	"io/fs"
	"os"
	"testing"
)

func TestIsNonInitialPIDNamespace(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // missing: the read fails
		want  bool
	}{
		{"host", map[string]string{"/proc/self/stat": "1 (x)", "/proc/2/comm": "kthreadd\n"}, false},
		{"host, comm without newline", map[string]string{"/proc/self/stat": "1 (x)", "/proc/2/comm": "kthreadd"}, false},
		{"container, pid 2 is a user process", map[string]string{"/proc/self/stat": "1 (x)", "/proc/2/comm": "sh\n"}, true},
		{"container, no pid 2", map[string]string{"/proc/self/stat": "1 (x)"}, true},
		{"container, kthreadd prefix only", map[string]string{"/proc/self/stat": "1 (x)", "/proc/2/comm": "kthreadd2\n"}, true},
		{"no procfs: cannot tell, do not blame the namespace", map[string]string{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var read []string
			readFile := func(name string) ([]byte, error) {
				read = append(read, name)
				if s, ok := tt.files[name]; ok {
					return []byte(s), nil
				}
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
			if got := isNonInitialPIDNamespace(readFile); got != tt.want {
				t.Errorf("isNonInitialPIDNamespace = %v, want %v (files read: %v)", got, tt.want, read)
			}
			for _, name := range read {
				if name != "/proc/self/stat" && name != "/proc/2/comm" {
					t.Errorf("read unexpected file %s", name)
				}
			}
		})
	}
}

// TestInNonInitialPIDNamespaceHere checks the real detection against the
// namespace's inode: the initial PID namespace is always 0xEFFFFFFC
// (PROC_PID_INIT_INO, include/linux/proc_ns.h).
func TestInNonInitialPIDNamespaceHere(t *testing.T) {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Skipf("cannot read /proc/self/ns/pid: %v", err)
	}
	want := link != "pid:[4026531836]"
	if got := inNonInitialPIDNamespace(); got != want {
		t.Errorf("inNonInitialPIDNamespace() = %v, but /proc/self/ns/pid is %s", got, link)
	}
}
