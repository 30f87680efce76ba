package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"auditplugin/host"
	"auditplugin/netlink"
)

const capAuditControl = 30 // CAP_AUDIT_CONTROL bit in /proc/self/status masks

// explain turns a permanent error into one log line naming the cause and the fix.
func explain(err error, exe string, procStatus io.Reader) string {
	switch {
	case errors.Is(err, netlink.ErrNoAudit):
		return fmt.Sprintf("cannot read the audit status (%v): the kernel has no audit support (built without CONFIG_AUDIT, or booted with audit=0); disabling", err)
	case errors.Is(err, netlink.ErrNamespace),
		// The kernel answers EPERM outside the initial PID namespace too.
		errors.Is(err, netlink.ErrPermission) && host.InNonInitialPIDNamespace():
		return fmt.Sprintf("cannot read the audit status (%v): the kernel answers only processes in the initial user and PID namespaces; "+
			"in a container run Netdata with hostPID (docker run --pid=host, Kubernetes hostPID: true), without a user namespace, and with CAP_AUDIT_CONTROL; disabling", err)
	case errors.Is(err, netlink.ErrPermission):
		if bnd, ok := capMask(procStatus, "CapBnd"); ok && bnd&(1<<capAuditControl) == 0 {
			return fmt.Sprintf("cannot read the audit status (%v): CAP_AUDIT_CONTROL is missing from this process's capability bounding set, so the file capability is masked; "+
				"under systemd add it to netdata.service with a drop-in ([Service] CapabilityBoundingSet=CAP_AUDIT_CONTROL, see the README) and restart netdata; disabling", err)
		}
		return fmt.Sprintf("cannot read the audit status (%v): grant CAP_AUDIT_CONTROL with 'setcap cap_audit_control+ep %s'; disabling", err, exe)
	}
	return fmt.Sprintf("cannot read the audit status (%v); disabling", err)
}

// capMask reads a hexadecimal capability mask such as CapBnd from /proc/self/status.
func capMask(procStatus io.Reader, name string) (uint64, bool) {
	if procStatus == nil {
		return 0, false
	}
	m, err := strconv.ParseUint(procStatusFields(procStatus)[name], 16, 64)
	return m, err == nil
}

func openProcStatus() io.Reader {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	return strings.NewReader(string(b))
}
