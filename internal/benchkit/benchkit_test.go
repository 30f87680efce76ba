package benchkit

import (
	"os"
	"testing"
	"time"
)

func TestCPUTime(t *testing.T) {
	start := CPUTime(false)
	for deadline := time.Now().Add(30 * time.Millisecond); time.Now().Before(deadline); {
	}
	if used := CPUTime(false) - start; used < 10*time.Millisecond {
		t.Errorf("CPUTime grew by %v during a 30 ms busy loop", used)
	}
}

// The rate comes from the plugin's -h: 4 a second at its 250 ms default.
func TestPluginRate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the plugin")
	}
	os.Unsetenv("AUDIT_PLUGIN_BINARY")
	if r := PluginRate(t); r != 4 {
		t.Errorf("PluginRate = %v, want 4 (the -sample-interval default 250ms)", r)
	}
}
