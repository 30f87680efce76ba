package e2e

import (
	"auditplugin/internal/netdatatest"
	"auditplugin/internal/testkit"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// UpdateScreenshotEnv, set to 1, makes the dashboard test write its
// screenshot to docs/dashboard.png (the copy the README shows) instead of a
// temporary directory.
const UpdateScreenshotEnv = "AUDITPLUGIN_UPDATE_SCREENSHOT"

const (
	screenshotWidth  = 1400
	screenshotHeight = 3000
)

// renderedTitle matches the title dygraph draws once a chart has rendered
// data: "Audit backlog (linux_audit.backlog)".
var renderedTitle = regexp.MustCompile(`class="dygraph-label dygraph-title">[^<]*\((linux_audit\.[a-z_]+)\)`)

// dashboardScreenshot opens Netdata 1.37's dashboard (the React dashboard
// at /, which draws charts with dygraph) on the linux_audit section in
// headless Chromium, fails unless our charts rendered, and saves a
// screenshot. The time window starts at the charts' first data: for a window
// reaching before it, the dashboard covers every chart with a "Want to extend
// your history?" note.
func dashboardScreenshot(t *testing.T, n *netdatatest.Netdata) {
	t.Helper()
	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Skip("skipping the dashboard screenshot: chromium is not installed")
	}
	charts, err := n.Charts()
	if err != nil {
		t.Fatal(err)
	}
	first := charts["linux_audit.backlog_utilization"].FirstEntry
	span := min(max(time.Now().Unix()-first-3, 30), 180)
	url := fmt.Sprintf("%s/#menu_linux_audit;after=-%d;before=0", n.URL(), span)

	dom := runChromium(t, chromium, "--dump-dom", url)
	rendered := map[string]bool{}
	for _, m := range renderedTitle.FindAllStringSubmatch(dom, -1) {
		rendered[m[1]] = true
	}
	for _, id := range []string{"linux_audit.backlog_utilization", "linux_audit.backlog", "linux_audit.lost", "linux_audit.backlog_wait_stall"} {
		if !rendered[id] {
			t.Errorf("the dashboard did not render chart %s (rendered: %v)", id, rendered)
		}
	}

	out := filepath.Join(t.TempDir(), "dashboard.png")
	if os.Getenv(UpdateScreenshotEnv) == "1" {
		out = filepath.Join(testkit.Root(t), "docs", "dashboard.png")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runChromium(t, chromium, "--screenshot="+out, url)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot %s: %v", out, err)
	}
	if got := img.Bounds().Size(); got != image.Pt(screenshotWidth, screenshotHeight) {
		t.Errorf("screenshot is %v, want %dx%d", got, screenshotWidth, screenshotHeight)
	}
	if c := distinctColors(img, 64); c < 64 {
		t.Errorf("screenshot has only %d colours: nothing drawn?", c)
	}
	t.Logf("dashboard screenshot (%d rendered linux_audit charts, last %d s): %s", len(rendered), span, out)
}

// runChromium runs headless Chromium on url with one output flag
// (--dump-dom or --screenshot=FILE) and returns its stdout. Virtual time
// lets the dashboard load its scripts and query the API for 15 s without
// waiting that long.
func runChromium(t *testing.T, chromium, output, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--no-first-run", "--no-default-browser-check", "--hide-scrollbars",
		"--user-data-dir="+t.TempDir(),
		fmt.Sprintf("--window-size=%d,%d", screenshotWidth, screenshotHeight),
		"--virtual-time-budget=15000",
		output, url)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s %s: %v\n%s", output, url, err, netdatatest.Tail(stderr.String(), 20))
	}
	t.Logf("chromium %s took %v", strings.SplitN(output, "=", 2)[0], time.Since(start).Round(100*time.Millisecond))
	return stdout.String()
}

// distinctColors counts distinct colours in img, up to limit.
func distinctColors(img image.Image, limit int) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) >= limit {
				return len(seen)
			}
		}
	}
	return len(seen)
}
