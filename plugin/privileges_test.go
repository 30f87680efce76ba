package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"auditplugin/netlink"
)

const exe = "/usr/libexec/netdata/plugins.d/audit.plugin"

func procStatus(capBnd string) *strings.Reader {
	return strings.NewReader("Name:\taudit.plugin\nCapInh:\t0000000000000000\nCapBnd:\t" + capBnd + "\nCapAmb:\t0000000000000000\n")
}

func TestExplain(t *testing.T) {
	perm := fmt.Errorf("get audit status: %w (%w)", netlink.ErrPermission, syscall.EPERM)
	for _, tc := range []struct {
		name   string
		err    error
		status *strings.Reader
		want   []string
		not    []string
	}{
		// Debian's netdata.service bounding set lacks CAP_AUDIT_CONTROL (bit 30).
		{"bounding set without the capability", perm, procStatus("00000000a80425fb"),
			[]string{"bounding set", "CapabilityBoundingSet=CAP_AUDIT_CONTROL", "netdata.service"}, []string{"setcap"}},
		{"bounding set with it", perm, procStatus("000001ffffffffff"),
			[]string{"setcap cap_audit_control+ep " + exe}, []string{"CapabilityBoundingSet"}},
		{"no /proc", perm, nil, []string{"setcap cap_audit_control+ep " + exe}, nil},
		{"unreadable CapBnd", perm, strings.NewReader("CapBnd:\tzz\n"), []string{"setcap"}, nil},
		{"namespace", fmt.Errorf("get audit status: %w (%w)", netlink.ErrNamespace, syscall.ECONNREFUSED), nil,
			[]string{"hostPID", "--pid=host", "user namespace"}, []string{"setcap"}},
		{"no audit", fmt.Errorf("open audit netlink socket: %w", netlink.ErrNoAudit), nil,
			[]string{"no audit support", "CONFIG_AUDIT", "audit=0"}, nil},
		{"other", fmt.Errorf("something odd"), nil, []string{"something odd", "disabling"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msg string
			if tc.status == nil {
				msg = explain(tc.err, exe, nil)
			} else {
				msg = explain(tc.err, exe, tc.status)
			}
			for _, w := range append(tc.want, tc.err.Error()) {
				if !strings.Contains(msg, w) {
					t.Errorf("message does not contain %q:\n%s", w, msg)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(msg, n) {
					t.Errorf("message contains %q:\n%s", n, msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("not one line: %q", msg)
			}
		})
	}
}
