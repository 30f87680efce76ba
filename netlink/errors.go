package netlink

import (
	"errors"
	"fmt"
	"syscall"
)

// Permanent errors: retrying cannot help, the operator has to change something.
var (
	// ErrNoAudit: the kernel was built without audit (or booted with it unavailable).
	ErrNoAudit = errors.New("kernel has no audit support")
	// ErrPermission: the process lacks CAP_AUDIT_CONTROL.
	ErrPermission = errors.New("missing CAP_AUDIT_CONTROL")
	// ErrNamespace: the process is not in the initial user namespace (the
	// kernel refuses the connection). Outside the initial PID namespace it
	// answers EPERM, as to a missing capability: ErrPermission, which the
	// caller tells apart (package host).
	ErrNamespace = errors.New("audit status is only available in the initial user and PID namespaces")
)

// Transient errors: the next query may succeed.
var (
	// ErrTimeout: no reply before the deadline.
	ErrTimeout = errors.New("no audit status reply before the deadline")
	// ErrHeld: every sender is asleep in the kernel (backlog over its limit
	// with backlog_wait_time > 0), so no new query can be sent now.
	ErrHeld = errors.New("all status queries are held by the kernel")
	// ErrClosed: the client was closed or its socket failed; reconnect.
	ErrClosed = errors.New("audit netlink socket closed")
	// errMalformed: a reply could not be parsed.
	errMalformed = errors.New("malformed netlink reply")
)

// IsPermanent reports whether err means the plugin can never collect here.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrNoAudit) || errors.Is(err, ErrPermission) || errors.Is(err, ErrNamespace)
}

// classifyErrno maps a kernel errno to our sentinel errors, keeping the errno
// in the chain so callers can still test for it.
func classifyErrno(op string, errno syscall.Errno) error {
	switch errno {
	case syscall.EPROTONOSUPPORT, syscall.EAFNOSUPPORT:
		return fmt.Errorf("%s: %w (%w)", op, ErrNoAudit, errno)
	case syscall.EPERM, syscall.EACCES:
		return fmt.Errorf("%s: %w (%w)", op, ErrPermission, errno)
	case syscall.ECONNREFUSED:
		// The kernel answers ECONNREFUSED to callers outside the initial user namespace.
		return fmt.Errorf("%s: %w (%w)", op, ErrNamespace, errno)
	}
	return fmt.Errorf("%s: %w", op, errno)
}
