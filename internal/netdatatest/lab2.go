package netdatatest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Netdata2Prefix is where .ci/netdata2.sh installs Netdata 2.11, with its
// ndlab2.sh (start a throwaway agent) and stop2.sh.
const Netdata2Prefix = "/opt/netdata2"

// Lab2 is a throwaway Netdata 2.11 started with ndlab2.sh, its API read as
// any agent's (Host).
type Lab2 struct {
	*Host
	URL         string
	PID         int
	Dir, LogDir string // ndlab2.sh's work and log directories
}

// StartLab2 runs ndlab2.sh: the stock plugins plus those of pluginsDir
// (whose *.plugin it enables), as user netdata, with extraConf appended to
// its netdata.conf; t.Cleanup stops it. Call RequireNetdata2 first.
func StartLab2(t testing.TB, pluginsDir, extraConf string) *Lab2 {
	t.Helper()
	cmd := exec.Command(filepath.Join(Netdata2Prefix, "ndlab2.sh"), "-p", pluginsDir, "-u", "netdata")
	cmd.Env = append(os.Environ(), "ND_EXTRA_CONF="+extraConf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	vars := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vars[k] = v
		}
	}
	n := &Lab2{URL: vars["ND_URL"], Dir: vars["ND_WORKDIR"], LogDir: vars["ND_LOGDIR"]}
	n.PID, _ = strconv.Atoi(vars["ND_PID"])
	if n.PID != 0 {
		t.Cleanup(func() { n.Stop(t) })
	}
	if err != nil {
		t.Fatalf("ndlab2.sh: %v\n%s%s", err, out, stderr.String())
	}
	n.Host = HostAt(n.URL)
	return n
}

// Stop stops the agent with stop2.sh (once; later calls do nothing). If t
// failed, it first logs the tail of collector.log.
func (n *Lab2) Stop(t testing.TB) {
	if n.PID == 0 {
		return
	}
	if t.Failed() {
		t.Logf("collector.log:\n%s", Tail(n.Log("collector.log"), 30))
	}
	out, err := exec.Command(filepath.Join(Netdata2Prefix, "stop2.sh"), fmt.Sprint(n.PID), n.Dir).CombinedOutput()
	if err != nil {
		t.Errorf("stop2.sh: %v\n%s", err, out)
	}
	n.PID = 0
}

// Log returns the log file name (daemon.log, collector.log, health.log).
func (n *Lab2) Log(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.LogDir, name))
	return string(b)
}
