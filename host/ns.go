package host

import (
	"os"
	"syscall"
)

// initialPIDNamespaceInode is the inode of the initial PID namespace, fixed
// by the kernel (PROC_PID_INIT_INO, include/linux/proc_ns.h); other
// namespaces get dynamic inodes from 0xF0000000 up.
const initialPIDNamespaceInode = 0xEFFFFFFC

// InNonInitialPIDNamespace tells a container without hostPID apart from a
// missing capability: both get EPERM from the kernel. It reads our own
// namespace link, which any process may do even with /proc mounted
// hidepid=2 (other processes, kernel threads included, are hidden there, so
// looking for them would blame the namespace for a missing capability).
// NSpid in /proc/self/status cannot tell: a container with its own /proc
// shows one entry there, as the host does.
func InNonInitialPIDNamespace() bool {
	return isNonInitialPIDNamespace(pidNamespaceInode)
}

func pidNamespaceInode() (uint64, error) {
	fi, err := os.Stat("/proc/self/ns/pid")
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, os.ErrInvalid
	}
	return st.Ino, nil
}

func isNonInitialPIDNamespace(inode func() (uint64, error)) bool {
	ino, err := inode()
	if err != nil {
		return false // no procfs: we cannot tell, so do not claim a namespace problem
	}
	return ino != initialPIDNamespaceInode
}
