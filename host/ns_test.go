package host

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

func TestIsNonInitialPIDNamespace(t *testing.T) {
	tests := []struct {
		name string
		ino  uint64
		err  error
		want bool
	}{
		{"host", 0xEFFFFFFC, nil, false},
		{"container", 4026532178, nil, true},
		{"no procfs: cannot tell, do not blame the namespace", 0, &fs.PathError{Op: "stat", Path: "/proc/self/ns/pid", Err: fs.ErrNotExist}, false},
		{"link not readable", 0, &fs.PathError{Op: "stat", Path: "/proc/self/ns/pid", Err: fs.ErrPermission}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := isNonInitialPIDNamespace(func() (uint64, error) { return tt.ino, tt.err })
			if got != tt.want {
				t.Errorf("isNonInitialPIDNamespace(%d, %v) = %v, want %v", tt.ino, tt.err, got, tt.want)
			}
		})
	}
}

// TestInNonInitialPIDNamespaceHere checks the real detection against the
// namespace link's text.
func TestInNonInitialPIDNamespaceHere(t *testing.T) {
	link, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		t.Skipf("cannot read /proc/self/ns/pid: %v", err)
	}
	want := link != "pid:[4026531836]"
	if got := InNonInitialPIDNamespace(); got != want {
		t.Errorf("InNonInitialPIDNamespace() = %v, but /proc/self/ns/pid is %s", got, link)
	}
	if _, err := pidNamespaceInode(); errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pidNamespaceInode: %v", err)
	}
}
