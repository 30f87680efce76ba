package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// SnapRoot is a directory Snapshot records: Depth levels below Path (-1
// for all), with every attribute or, with NamesOnly, names and types only
// (a directory other programs write below).
type SnapRoot struct {
	Path      string
	Depth     int
	NamesOnly bool
}

// FileState is what Snapshot records of one path.
type FileState struct {
	Mode         fs.FileMode
	UID, GID     uint32
	Size         int64
	Mtime, Ctime int64  // nanoseconds
	Hash         string // SHA-256 of a regular file
	Caps         string // security.capability xattr, hex
	Link         string
}

// Tree is a snapshot: the state of each path.
type Tree map[string]FileState

// Snapshot records the paths below roots (a missing root records nothing),
// to prove an installer changed only what it should.
func Snapshot(t testing.TB, roots ...SnapRoot) Tree {
	t.Helper()
	out := Tree{}
	for _, r := range roots {
		if _, err := os.Lstat(r.Path); err != nil {
			continue
		}
		err := filepath.WalkDir(r.Path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			depth := 0
			if rel, _ := filepath.Rel(r.Path, p); rel != "." {
				depth = strings.Count(rel, string(filepath.Separator)) + 1
			}
			if r.NamesOnly {
				out[p] = FileState{Mode: d.Type()}
			} else {
				out[p] = StateOf(t, p)
			}
			if d.IsDir() && r.Depth >= 0 && depth >= r.Depth {
				return filepath.SkipDir
			}
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot %s: %v", r.Path, err)
		}
	}
	return out
}

// StateOf is the state of one path (not following a symlink).
func StateOf(t testing.TB, p string) FileState {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	s := FileState{
		Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, Size: fi.Size(),
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		s.Link, _ = os.Readlink(p)
	case fi.Mode().IsRegular():
		s.Hash = FileHash(t, p)
		s.Caps = FileCaps(p)
	}
	return s
}

// FileHash is the SHA-256 of a file's content, in hex.
func FileHash(t testing.TB, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("hash %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// FileCaps is a file's security.capability xattr in hex, "" if none.
func FileCaps(p string) string {
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(p, "security.capability", buf)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(buf[:n])
}

// Compare says which attributes Diff compares beyond type, mode, owner,
// content, capabilities and link target.
type Compare int

const (
	// Everything: sizes and times too.
	Everything Compare = iota
	// NotDirTimes: a directory's times do not count (adding and removing
	// an entry changes them).
	NotDirTimes
	// NoSizesOrTimes: neither sizes nor times count (a package manager
	// rewrites what it installs).
	NoSizesOrTimes
)

// Diff lists, sorted, how b differs from a.
func Diff(a, b Tree, c Compare) []string {
	var out []string
	for p, sa := range a {
		sb, ok := b[p]
		if !ok {
			out = append(out, "removed "+p)
			continue
		}
		switch {
		case c == NoSizesOrTimes:
			sa.Size, sa.Mtime, sa.Ctime, sb.Size, sb.Mtime, sb.Ctime = 0, 0, 0, 0, 0, 0
		case c == NotDirTimes && sa.Mode.IsDir() && sb.Mode.IsDir():
			sa.Mtime, sa.Ctime, sb.Mtime, sb.Ctime = 0, 0, 0, 0
		}
		if sa != sb {
			out = append(out, fmt.Sprintf("changed %s: %+v -> %+v", p, sa, sb))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "added "+p)
		}
	}
	sort.Strings(out)
	return out
}

// ReadFile is a file's content; a test that cannot read it fails.
func ReadFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
