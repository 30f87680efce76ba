package netlink

import (
	"os"
	"strings"
)

// inNonInitialPIDNamespace tells a container without hostPID apart from a
// missing capability: both get EPERM from the kernel. Kernel threads are only
// visible from the initial PID namespace, and PID 2 is always kthreadd there.
func inNonInitialPIDNamespace() bool {
	return isNonInitialPIDNamespace(os.ReadFile)
}

func isNonInitialPIDNamespace(readFile func(string) ([]byte, error)) bool {
	if _, err := readFile("/proc/self/stat"); err != nil {
		return false // no procfs: we cannot tell, so do not claim a namespace problem
	}
	comm, err := readFile("/proc/2/comm")
	return err != nil || strings.TrimSpace(string(comm)) != "kthreadd"
}
