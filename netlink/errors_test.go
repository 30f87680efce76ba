package netlink

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

// wantPermissionOrNamespace is how an EPERM must be classified: as a
// missing capability, which the plugin tells apart from a PID namespace
// (package host, plugin/privileges.go).
func wantPermissionOrNamespace() error { return ErrPermission }

func TestClassifyErrno(t *testing.T) {
	tests := []struct {
		errno     syscall.Errno
		want      error // nil: no sentinel
		permanent bool
	}{
		{syscall.EPROTONOSUPPORT, ErrNoAudit, true},
		{syscall.EAFNOSUPPORT, ErrNoAudit, true},
		{syscall.EPERM, wantPermissionOrNamespace(), true},
		{syscall.EACCES, wantPermissionOrNamespace(), true},
		{syscall.ECONNREFUSED, ErrNamespace, true},
		{syscall.EINVAL, nil, false},
		{syscall.ENOBUFS, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			err := classifyErrno("op", tt.errno)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("classifyErrno(%v) = %v, want %v", tt.errno, err, tt.want)
			}
			if !errors.Is(err, tt.errno) {
				t.Errorf("classifyErrno(%v) = %v lost the errno", tt.errno, err)
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, !tt.permanent, tt.permanent)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", err)) }
	for _, err := range []error{ErrNoAudit, ErrPermission, ErrNamespace} {
		if !IsPermanent(err) || !IsPermanent(wrap(err)) {
			t.Errorf("IsPermanent(%v) = false, want true", err)
		}
	}
	for _, err := range []error{nil, ErrTimeout, ErrHeld, ErrClosed, errMalformed, ErrStray, syscall.EPERM, errors.New("other")} {
		if IsPermanent(err) || IsPermanent(wrap(err)) {
			t.Errorf("IsPermanent(%v) = true, want false", err)
		}
	}
}
