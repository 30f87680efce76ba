package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// CopyForOthers copies the executable src to name in a new directory that
// every user may enter (a test's own temporary directories are 0700), so a
// test can run it as another user or give the copy a file capability. The
// directory is removed when t ends.
func CopyForOthers(t testing.TB, src, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "auditplugin-copy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
