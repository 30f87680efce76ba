package netdatatest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"auditplugin/internal/testkit"
)

// Netdata2Binary is Netdata 2.11's executable, installed from
// ../shared/netdata-2.11/ by .ci/netdata2.sh (Debian 12 packages only 1.37).
const Netdata2Binary = Netdata2Prefix + "/usr/sbin/netdata"

// Agent is one Netdata of the test matrix.
type Agent struct {
	Name   string // subtest name: netdata-1.37, netdata-2.11
	Binary string
}

// Agents is the test matrix: Debian's 1.37 and the 2.11 build. Run a test
// once per agent with t.Run(a.Name, ...) and a.Require(t) first.
var Agents = []Agent{
	{Name: "netdata-1.37", Binary: DefaultBinary},
	{Name: "netdata-2.11", Binary: Netdata2Binary},
}

// Agent2 is the matrix's Netdata 2.11.
var Agent2 = Agents[1]

// Require skips t when the agent cannot run here (see RequireNetdata);
// for 2.11 it first installs it when missing (.ci/netdata2.sh): it skips,
// saying why, when ../shared/netdata-2.11 is not beside the repository, and
// fails when that happens under CI=true or the install fails.
func (a Agent) Require(t testing.TB) {
	t.Helper()
	RequireNetdata(t)
	if a.Binary == Netdata2Binary {
		RequireNetdata2(t)
	}
	if _, err := os.Stat(a.Binary); err != nil {
		t.Skipf("skipping on %s: %v", a.Name, err)
	}
}

var netdata2Once struct {
	sync.Once
	out  []byte
	code int
	err  error
}

// RequireNetdata2 installs Netdata 2.11 into /opt/netdata2 with
// .ci/netdata2.sh when it is missing. Without ../shared/netdata-2.11 beside
// the repository it skips t saying so, or fails under CI=true (the script
// exits 1 then); any other install failure fails t.
func RequireNetdata2(t testing.TB) {
	t.Helper()
	root := testkit.Root(t)
	netdata2Once.Do(func() {
		cmd := exec.Command(filepath.Join(root, ".ci", "netdata2.sh"))
		cmd.Dir = root
		netdata2Once.out, netdata2Once.err = cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(netdata2Once.err, &ee) {
			netdata2Once.code = ee.ExitCode()
		}
	})
	switch {
	case netdata2Once.err == nil:
	case netdata2Once.code == 3: // tarball missing, outside CI
		t.Skipf("skipping on Netdata 2.11: %s", netdata2Once.out)
	default:
		t.Fatalf("installing Netdata 2.11 (.ci/netdata2.sh): %v\n%s", netdata2Once.err, netdata2Once.out)
	}
}
