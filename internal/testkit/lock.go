package testkit

import (
	"errors"
	"os"
	"syscall"
	"testing"
	"time"
)

// lockWait bounds how long Flock waits for another test process.
const lockWait = 5 * time.Minute

// Flock holds an exclusive flock on path (made if missing) for the rest of
// t, waiting up to 5 minutes for another holder; the kernel releases it
// when the holder dies.
func Flock(t testing.TB, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("open lock: %v", err)
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			t.Fatalf("flock %s: %v", path, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			t.Fatalf("%s still held after %v", path, lockWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { f.Close() })
}
