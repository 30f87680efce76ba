// Command audit-restore puts back the kernel audit state that a killed
// kernel test left behind (see kerneltest.RecoverLeftover). .ci/run runs it
// before the tests (`make restore` by hand); it does nothing when no test
// died mid-setup.
package main

import (
	"errors"
	"fmt"
	"os"

	"auditplugin/internal/kerneltest"
)

func main() {
	if _, err := os.Stat(kerneltest.RecoveryFile); errors.Is(err, os.ErrNotExist) {
		fmt.Println("audit-restore: nothing to restore")
		return
	}
	if err := kerneltest.RecoverLeftover(); err != nil {
		fmt.Fprintln(os.Stderr, "audit-restore:", err)
		os.Exit(1)
	}
	fmt.Println("audit-restore: restored the audit state recorded in", kerneltest.RecoveryFile)
}
