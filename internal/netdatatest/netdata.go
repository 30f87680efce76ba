package netdatatest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"auditplugin/internal/testkit"
)

// DefaultBinary is the netdata executable Start runs unless Options.Binary
// says otherwise.
const DefaultBinary = "/usr/sbin/netdata"

// Options configures a throwaway Netdata.
type Options struct {
	// PluginsDir holds the *.plugin files to run. Every executable *.plugin
	// in it runs; no stock plugin does. Empty: no external plugins.
	PluginsDir string
	// HealthDir is the health config directory. The stock health directory
	// is an empty directory, so only these alert files load. Empty: none.
	HealthDir string
	// RunAsNetdata runs Netdata, and so its plugins and alarm script, as user
	// netdata, as in production. Start makes its own directories usable by
	// that user and opens the test's temporary directories (o+rx) on the way
	// to PluginsDir and HealthDir.
	RunAsNetdata bool
	// UpdateEvery is [db] update every in seconds; 0 means 1.
	UpdateEvery int
	// PluginOptions maps a plugin name (file name without .plugin) to its
	// [plugin:NAME] command options, which Netdata appends to its argv.
	PluginOptions map[string]string
	// Hostname is [global] hostname; empty means "e2e-PORT", so that every
	// instance (a parent and its children) has a distinct one.
	Hostname string
	// Stream makes the instance a streaming child, a parent, or both.
	Stream *StreamOptions
	// ExtraConf is appended to netdata.conf. A section repeated there is
	// merged with the generated one and a repeated key overrides it.
	ExtraConf string
	// Binary is the netdata executable; empty means DefaultBinary. Its major
	// version (netdata -v) decides the version-specific configuration and
	// which log files ErrorLog reads.
	Binary string
	// StockPlugins names plugins of the agent's own plugins directory (the
	// one beside Binary, e.g. "debugfs" on 2.x) to run as well; the other
	// plugins there stay off.
	StockPlugins []string
	// StockHealth loads the agent's own stock health directory (beside
	// Binary) instead of an empty one.
	StockHealth bool
}

// StreamOptions configures streaming (stream.conf).
type StreamOptions struct {
	// To makes this instance a child streaming to a parent at host:port
	// (parent.Addr()).
	To string
	// APIKey is the key a child presents and a parent accepts; it must be a
	// UUID (see NewAPIKey).
	APIKey string
	// Accept makes this instance a parent accepting children that present
	// APIKey, keeping their data in RAM and evaluating its own health
	// configuration for them without the default 60 s postponement.
	Accept bool
	// Extra is appended to stream.conf.
	Extra string
}

// NewAPIKey returns a random UUID (version 4) for StreamOptions.APIKey.
func NewAPIKey() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Netdata is a running throwaway agent. Its embedded Host queries the
// agent's own host.
type Netdata struct {
	Host

	t        testing.TB
	opts     Options
	port     int
	hostname string
	guid     string

	Dir        string // root of everything Start wrote
	ConfigFile string // netdata.conf
	LogDir     string // 1.37: error.log, health.log, access.log; 2.x: daemon.log, collector.log, health.log; netdata.out
	Version    string // of the binary, e.g. "v2.11.0"
	Major      int    // its major version: 1 or 2
	LibDir     string // [directories] lib; unique, so it identifies the instance's processes
	NotifyFile string // where the recorder script appends

	bin     string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error

	stopOnce sync.Once
}

// Available reports why Start cannot run here, or nil: it needs root (to
// switch to user netdata and to make directories for it) and the binary.
func Available() error {
	if _, err := os.Stat(DefaultBinary); err != nil {
		return fmt.Errorf("netdata not installed: %v", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("not root: Netdata must switch to user netdata")
	}
	if _, err := user.Lookup("netdata"); err != nil {
		return fmt.Errorf("no netdata user: %v", err)
	}
	return nil
}

// RequireNetdata skips the test when Available reports a problem.
func RequireNetdata(t testing.TB) {
	t.Helper()
	testkit.SkipShort(t, "Netdata integration tests start a real Netdata")
	if err := Available(); err != nil {
		t.Skipf("skipping Netdata integration test: %v", err)
	}
}

const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	// PollInterval is how often the harness and its tests poll an agent.
	PollInterval = 200 * time.Millisecond
)

// Start runs a throwaway Netdata configured by o and waits until its API
// answers. It skips the test when the binary is missing, or RunAsNetdata is
// set without root. t.Cleanup stops it (SIGTERM, SIGKILL after 10 s) and
// kills any process it left behind; if the test failed, the cleanup logs the
// tail of error.log first.
func Start(t testing.TB, o Options) *Netdata {
	t.Helper()
	bin := o.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("skipping: netdata binary: %v", err)
	}
	if o.RunAsNetdata && os.Geteuid() != 0 {
		t.Skip("skipping: RunAsNetdata needs root")
	}
	if o.UpdateEvery <= 0 {
		o.UpdateEvery = 1
	}
	// A port picked by listening on :0 can be taken by someone else before
	// Netdata binds it; a retry with a fresh directory is cheap.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		n, err := start(t, bin, o)
		if err == nil {
			return n
		}
		lastErr = err
		if !errors.Is(err, errNotReady) {
			break
		}
	}
	t.Fatalf("start netdata: %v", lastErr)
	return nil
}

var errNotReady = errors.New("netdata did not become ready")

func start(t testing.TB, bin string, o Options) (*Netdata, error) {
	t.Helper()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	n := &Netdata{t: t, opts: o, port: port, exited: make(chan struct{})}
	if n.Version, n.Major, err = BinaryVersion(bin); err != nil {
		return nil, err
	}
	n.bin = bin
	n.hostname = o.Hostname
	if n.hostname == "" {
		n.hostname = fmt.Sprintf("e2e-%d", port)
	}
	n.Host = Host{n: n, base: n.URL()}
	if err := n.prepare(); err != nil {
		return nil, err
	}

	out, err := os.Create(filepath.Join(n.LogDir, "netdata.out"))
	if err != nil {
		return nil, err
	}
	defer out.Close()
	cmd := exec.Command(bin, "-c", n.ConfigFile, "-D", "-P", filepath.Join(n.Dir, "run", "netdata.pid"))
	cmd.Dir = n.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = append(os.Environ(), "DO_NOT_TRACK=1")
	if n.Major >= 2 {
		// 2.x keeps its pipe, IPC sockets and spawn server in the run dir
		// (default /run/netdata): a private one per instance.
		cmd.Env = append(cmd.Env, "NETDATA_RUN_DIR="+filepath.Join(n.Dir, "run"))
	}
	// Own process group: the spawn server, plugins and alarm scripts join
	// it, so one kill(-pgid) reaches all of them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n.cmd = cmd
	go func() {
		n.waitErr = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			n.logTail()
		}
		n.Stop()
	})

	if err := n.waitReady(); err != nil {
		n.Stop()
		return nil, err
	}
	return n, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (n *Netdata) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			return fmt.Errorf("%w: netdata exited (%v); netdata.out:\n%s\nerror.log tail:\n%s",
				errNotReady, n.waitErr, n.readLog("netdata.out"), Tail(n.ErrorLog(), 30))
		default:
		}
		var info struct {
			UID string `json:"uid"`
		}
		if err := n.getJSON("/api/v1/info", &info); err == nil {
			n.guid = info.UID
			return nil
		}
		time.Sleep(PollInterval)
	}
	return fmt.Errorf("%w: /api/v1/info did not answer within %v; error.log tail:\n%s",
		errNotReady, startTimeout, Tail(n.ErrorLog(), 30))
}

// prepare creates the directory tree and writes the configuration.
func (n *Netdata) prepare() error {
	o := n.opts
	n.Dir = n.t.TempDir()
	n.ConfigFile = filepath.Join(n.Dir, "etc", "netdata.conf")
	n.LogDir = filepath.Join(n.Dir, "log")
	n.LibDir = filepath.Join(n.Dir, "lib")
	n.NotifyFile = filepath.Join(n.Dir, "notify", "calls")

	// Read-only for Netdata: config, stock health, harness plugins.
	for _, d := range []string{"etc", "stock-health", "harness-plugins", "health"} {
		if err := os.Mkdir(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	// Written by Netdata (and, for notify, by the alarm script).
	writable := []string{"log", "cache", "lib", "home", "run", "notify"}
	for _, d := range writable {
		if err := os.Mkdir(filepath.Join(n.Dir, d), 0o755); err != nil {
			return err
		}
	}
	runAs := "root"
	if o.RunAsNetdata {
		runAs = "netdata"
		u, err := user.Lookup("netdata")
		if err != nil {
			return err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range writable {
			if err := os.Chown(filepath.Join(n.Dir, d), uid, gid); err != nil {
				return err
			}
		}
		// t.TempDir() and its parent are 0700; user netdata must traverse
		// them, and those of the caller's directories.
		for _, p := range []string{n.Dir, o.PluginsDir, o.HealthDir} {
			if p == "" {
				continue
			}
			if err := OpenForOthers(p); err != nil {
				return err
			}
		}
		n.warnUnreadable()
	} else if u, err := user.Current(); err == nil && os.Geteuid() != 0 {
		runAs = u.Username
	}

	if err := os.WriteFile(filepath.Join(n.Dir, "harness-plugins", "system-info.sh"), []byte(systemInfoStub), 0o755); err != nil {
		return err
	}
	recorder := filepath.Join(n.Dir, "harness-plugins", "alarm-recorder.sh")
	if err := os.WriteFile(recorder, []byte(recorderScript(n.NotifyFile)), 0o755); err != nil {
		return err
	}
	// 1.37 skips anonymous statistics when this file exists.
	if err := os.WriteFile(filepath.Join(n.Dir, "etc", ".opt-out-from-anonymous-statistics"), nil, 0o644); err != nil {
		return err
	}

	healthDir := o.HealthDir
	if healthDir == "" {
		healthDir = filepath.Join(n.Dir, "health")
	}
	pluginDirs := quote(filepath.Join(n.Dir, "harness-plugins"))
	stockPlugins := n.stockDir("usr/libexec/netdata/plugins.d")
	if len(o.StockPlugins) > 0 {
		pluginDirs += " " + quote(stockPlugins)
	}
	if o.PluginsDir != "" {
		abs, err := filepath.Abs(o.PluginsDir)
		if err != nil {
			return err
		}
		pluginDirs += " " + quote(abs)
	}
	if o.HealthDir != "" {
		abs, err := filepath.Abs(healthDir)
		if err != nil {
			return err
		}
		healthDir = abs
	}

	var c bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&c, format+"\n", a...) }
	p("# written by auditplugin/internal/netdatatest")
	p("[global]")
	p("\trun as user = %s", runAs)
	p("\thostname = %s", n.hostname)
	p("[db]")
	p("\tmode = ram")
	p("\tupdate every = %d", o.UpdateEvery)
	p("[directories]")
	p("\tconfig = %s", filepath.Join(n.Dir, "etc"))
	p("\tstock config = %s", filepath.Join(n.Dir, "etc"))
	p("\tlog = %s", n.LogDir)
	p("\tcache = %s", filepath.Join(n.Dir, "cache"))
	p("\tlib = %s", n.LibDir)
	p("\thome = %s", filepath.Join(n.Dir, "home"))
	p("\tplugins = %s", pluginDirs)
	p("\thealth config = %s", healthDir)
	stockHealth := filepath.Join(n.Dir, "stock-health")
	if o.StockHealth {
		stockHealth = n.stockDir("usr/lib/netdata/conf.d/health.d")
	}
	p("\tstock health config = %s", stockHealth)
	p("[logs]")
	p("\terrors flood protection period = 0")
	if n.Major >= 2 {
		// 2.x logs to the journal when it can: files, as 1.37 does.
		p("\tmethod = file")
		p("\tlevel = info")
		p("\tdaemon = %s", filepath.Join(n.LogDir, "daemon.log"))
		p("\tcollector = %s", filepath.Join(n.LogDir, "collector.log"))
		p("\thealth = %s", filepath.Join(n.LogDir, "health.log"))
		p("\taccess = off")
		p("\tdebug = off")
		p("[ml]")
		p("\tenabled = no")
	}
	p("[web]")
	p("\tbind to = 127.0.0.1:%d", n.port)
	p("[registry]")
	p("\tenabled = no")
	p("[plugins]")
	p("\tenable running new plugins = yes")
	off := []string{
		"timex", "idlejitter", "netdata monitoring", "tc", "diskspace", "proc",
		"cgroups", "statsd", "slabinfo",
		"apps", "python.d", "charts.d", "go.d", "node.d", "ebpf", "perf",
		"nfacct", "cups", "fping", "ioping", "freeipmi", "xenstat",
	}
	if len(o.StockPlugins) > 0 {
		// Every other plugin of the stock directory stays off.
		entries, _ := os.ReadDir(stockPlugins)
		for _, e := range entries {
			if name, ok := strings.CutSuffix(e.Name(), ".plugin"); ok {
				off = append(off, name)
			}
		}
	}
	for _, name := range off {
		if _, mine := o.PluginOptions[name]; !mine && !n.hasPlugin(name) && !slices.Contains(o.StockPlugins, name) {
			p("\t%s = no", name)
		}
	}
	for _, name := range o.StockPlugins {
		p("\t%s = yes", name)
	}
	p("[health]")
	p("\tenabled = yes")
	p("\tenable stock health configuration = %s", map[bool]string{false: "no", true: "yes"}[o.StockHealth])
	p("\tscript to execute on alarm = %s", recorder)
	p("\trun at least every seconds = 1")
	names := make([]string, 0, len(o.PluginOptions))
	for name := range o.PluginOptions {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p("[plugin:%s]", name)
		p("\tcommand options = %s", o.PluginOptions[name])
	}
	if o.ExtraConf != "" {
		p("%s", o.ExtraConf)
	}
	if err := os.WriteFile(n.ConfigFile, c.Bytes(), 0o644); err != nil {
		return err
	}

	if s := o.Stream; s != nil {
		var sc bytes.Buffer
		p := func(format string, a ...any) { fmt.Fprintf(&sc, format+"\n", a...) }
		p("[stream]")
		if s.To != "" {
			p("\tenabled = yes")
			p("\tdestination = %s", s.To)
			p("\tapi key = %s", s.APIKey)
			p("\treconnect delay seconds = 1")
		} else {
			p("\tenabled = no")
		}
		if s.Accept {
			p("[%s]", s.APIKey)
			p("\tenabled = yes")
			p("\tallow from = *")
			p("\tdefault memory mode = ram")
			p("\thealth enabled by default = yes")
			p("\tdefault postpone alarms on connect seconds = 0")
		}
		if s.Extra != "" {
			p("%s", s.Extra)
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "etc", "stream.conf"), sc.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// stockDir is a directory of the agent's installation: rel under the prefix
// that holds Binary (usr/sbin/netdata).
func (n *Netdata) stockDir(rel string) string {
	prefix := filepath.Dir(filepath.Dir(filepath.Dir(n.bin)))
	return filepath.Join(prefix, rel)
}

var versions sync.Map // binary path -> [2]any{version, major}

// BinaryVersion runs `BIN -v` ("netdata v2.11.0") and returns the version
// and its major number.
func BinaryVersion(bin string) (string, int, error) {
	if v, ok := versions.Load(bin); ok {
		vm := v.([2]any)
		return vm[0].(string), vm[1].(int), nil
	}
	out, err := exec.Command(bin, "-v").Output()
	if err != nil {
		return "", 0, fmt.Errorf("%s -v: %v", bin, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || !strings.HasPrefix(f[1], "v") {
		return "", 0, fmt.Errorf("%s -v: unexpected %q", bin, out)
	}
	major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(f[1], "v"), ".", 2)[0])
	if err != nil {
		return "", 0, fmt.Errorf("%s -v: unexpected %q", bin, out)
	}
	versions.Store(bin, [2]any{f[1], major})
	return f[1], major, nil
}

func (n *Netdata) hasPlugin(name string) bool {
	if n.opts.PluginsDir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(n.opts.PluginsDir, name+".plugin"))
	return err == nil
}

func quote(s string) string { return `"` + s + `"` }

// OpenForOthers adds o+rx to path and its ancestors inside the temporary
// directory (where t.TempDir() makes 0700 directories), and checks that
// ancestors outside it already let others through.
func OpenForOthers(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Clean(os.TempDir())
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		mode := fi.Mode().Perm()
		if strings.HasPrefix(p, tmp+string(filepath.Separator)) {
			if fi.IsDir() && mode&0o005 != 0o005 {
				if err := os.Chmod(p, mode|0o005); err != nil {
					return err
				}
			}
		} else if fi.IsDir() && mode&0o001 == 0 {
			return fmt.Errorf("user netdata cannot traverse %s (mode %v): use a directory under %s", p, mode, tmp)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// warnUnreadable logs files user netdata probably cannot use: plugins must be
// executable and health files readable by others or group netdata.
func (n *Netdata) warnUnreadable() {
	check := func(dir, suffix string, bits os.FileMode, what string) {
		if dir == "" {
			return
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), suffix) {
				continue
			}
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			st, _ := fi.Sys().(*syscall.Stat_t)
			g, _ := user.LookupGroup("netdata")
			groupOK := st != nil && g != nil && strconv.Itoa(int(st.Gid)) == g.Gid && fi.Mode().Perm()&(bits<<3) == bits<<3
			if fi.Mode().Perm()&bits != bits && !groupOK {
				n.t.Logf("e2e: %s %s (mode %v) is not %s by user netdata", what, e.Name(), fi.Mode().Perm(), map[os.FileMode]string{0o5: "executable", 0o4: "readable"}[bits])
			}
		}
	}
	check(n.opts.PluginsDir, ".plugin", 0o005, "plugin")
	check(n.opts.HealthDir, ".conf", 0o004, "health file")
}

// systemInfoStub replaces system-info.sh: without one, 1.37.1 aborts as a
// streaming child; the stock one would probe cloud metadata over the network.
const systemInfoStub = `#!/bin/sh
# written by auditplugin/internal/netdatatest: fixed system info, no probing
for k in CONTAINER_OS_NAME CONTAINER_OS_ID CONTAINER_OS_ID_LIKE CONTAINER_OS_VERSION \
	CONTAINER_OS_VERSION_ID CONTAINER_OS_DETECTION HOST_OS_NAME HOST_OS_ID HOST_OS_ID_LIKE \
	HOST_OS_VERSION HOST_OS_VERSION_ID HOST_OS_DETECTION SYSTEM_VIRTUALIZATION \
	SYSTEM_VIRT_DETECTION SYSTEM_CONTAINER SYSTEM_CONTAINER_DETECTION \
	SYSTEM_CPU_LOGICAL_CPU_COUNT SYSTEM_CPU_VENDOR SYSTEM_CPU_MODEL SYSTEM_CPU_FREQ \
	SYSTEM_CPU_DETECTION SYSTEM_TOTAL_RAM SYSTEM_RAM_DETECTION SYSTEM_TOTAL_DISK_SIZE \
	SYSTEM_DISK_DETECTION INSTANCE_CLOUD_TYPE INSTANCE_CLOUD_INSTANCE_TYPE \
	INSTANCE_CLOUD_INSTANCE_REGION; do
	echo "NETDATA_$k=unknown"
done
echo "NETDATA_CONTAINER_IS_OFFICIAL_IMAGE=false"
echo "NETDATA_HOST_IS_K8S_NODE=false"
echo "NETDATA_SYSTEM_KERNEL_NAME=$(uname -s)"
echo "NETDATA_SYSTEM_KERNEL_VERSION=$(uname -r)"
echo "NETDATA_SYSTEM_ARCHITECTURE=$(uname -m)"
`

// URL is the agent's base URL, http://127.0.0.1:PORT.
func (n *Netdata) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", n.port) }

// Addr is the agent's host:port, for StreamOptions.To.
func (n *Netdata) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// Hostname is the configured [global] hostname.
func (n *Netdata) Hostname() string { return n.hostname }

// MachineGUID is the agent's machine GUID (the "uid" of /api/v1/info).
func (n *Netdata) MachineGUID() string { return n.guid }

// PID is the netdata process id.
func (n *Netdata) PID() int { return n.cmd.Process.Pid }

// ReloadHealth makes Netdata re-read its health configuration (SIGUSR2).
func (n *Netdata) ReloadHealth() error { return n.cmd.Process.Signal(syscall.SIGUSR2) }

// Exited is closed when the netdata process has exited.
func (n *Netdata) Exited() <-chan struct{} { return n.exited }

// Stop terminates Netdata (SIGTERM, then SIGKILL to its process group after
// 10 s) and kills processes it left behind: its process group and anything
// whose environment names this instance's lib directory (a plugin's child
// that called setsid). It is idempotent; t.Cleanup calls it.
func (n *Netdata) Stop() {
	n.stopOnce.Do(func() {
		pgid := n.cmd.Process.Pid
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(stopTimeout):
			n.t.Logf("e2e: netdata %d ignored SIGTERM for %v; killing it", pgid, stopTimeout)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-n.exited
		}
		// Group members (spawn server, a plugin's sleeping child) are
		// expected stragglers: kill them quietly. Others escaped the group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		deadline := time.Now().Add(2 * time.Second)
		logged := map[int]bool{}
		for {
			left := n.leftovers()
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			for _, p := range left {
				if p.pgid != pgid && !logged[p.pid] {
					logged[p.pid] = true
					n.t.Logf("e2e: killing process %d (%s) left behind by netdata", p.pid, p.cmdline)
				}
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

type process struct {
	pid, pgid int
	cmdline   string
}

// leftovers lists live processes (not zombies) started by this instance,
// found by NETDATA_LIB_DIR in their environment.
func (n *Netdata) leftovers() []process {
	want := []byte("\x00NETDATA_LIB_DIR=" + n.LibDir + "\x00")
	entries, _ := os.ReadDir("/proc")
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(append([]byte{0}, env...), want) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// After "(comm)": state ppid pgrp ...
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if i < 0 || len(f) < 3 || f[0] == "Z" {
			continue
		}
		pgid, _ := strconv.Atoi(f[2])
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, process{pid: pid, pgid: pgid, cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))})
	}
	return out
}

// Processes lists the PIDs of the live processes this instance started
// (Netdata, its plugins, alarm scripts), found as Stop finds its leftovers.
func (n *Netdata) Processes() []int {
	var pids []int
	for _, p := range n.leftovers() {
		pids = append(pids, p.pid)
	}
	return pids
}

// ErrorLog returns Netdata's errors and info and the plugins' stderr: 1.37's
// error.log; on 2.x daemon.log followed by collector.log (the plugins'
// stderr and the plugins.d parser's messages).
func (n *Netdata) ErrorLog() string {
	if n.Major >= 2 {
		return n.readLog("daemon.log") + n.readLog("collector.log")
	}
	return n.readLog("error.log")
}

// CollectorLog returns the log holding the plugins' stderr: 1.37's
// error.log, 2.x's collector.log.
func (n *Netdata) CollectorLog() string {
	if n.Major >= 2 {
		return n.readLog("collector.log")
	}
	return n.readLog("error.log")
}

// HealthLog returns health.log (alert events and notifications sent).
func (n *Netdata) HealthLog() string { return n.readLog("health.log") }

// HealthConfigErrors returns the log lines about health configuration
// problems (syntax errors, unknown keys, useless alerts): 1.37's error.log
// has " ERROR : ", 2.x's daemon.log (logfmt) "level=error".
func (n *Netdata) HealthConfigErrors() []string {
	var out []string
	for _, l := range strings.Split(n.ErrorLog(), "\n") {
		if (strings.Contains(l, " ERROR : ") || strings.Contains(l, " level=error ")) && strings.Contains(l, "Health configuration") {
			out = append(out, l)
		}
	}
	return out
}

func (n *Netdata) readLog(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.LogDir, name))
	return string(b)
}

func (n *Netdata) logTail() {
	n.t.Logf("e2e: %s (%s) error.log tail:\n%s", n.hostname, n.Dir, Tail(n.ErrorLog(), 40))
	if out := n.readLog("netdata.out"); strings.TrimSpace(out) != "" {
		n.t.Logf("e2e: %s netdata.out tail:\n%s", n.hostname, Tail(out, 20))
	}
}

// Tail returns the last lines of s.
func Tail(s string, lines int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// OnlyAuditPlugin is the netdata.conf text that runs, of the plugins in
// pluginsDir (an installed Netdata's own), only audit.plugin, and loads the
// stock health configuration from healthDir: the layout an installer or a
// package put the plugin and its alerts into.
func OnlyAuditPlugin(t testing.TB, pluginsDir, healthDir string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[plugins]\n\tenable running new plugins = no\n\taudit = yes\n")
	entries, err := os.ReadDir(pluginsDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".plugin"); ok && name != "audit" {
			fmt.Fprintf(&b, "\t%s = no\n", name)
		}
	}
	fmt.Fprintf(&b, "[directories]\n\tstock health config = %s\n", healthDir)
	b.WriteString("[health]\n\tenable stock health configuration = yes\n")
	return b.String()
}
