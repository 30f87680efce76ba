package netdatatest

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// HealthAlert is one alert of a health file: its name and the chart (or
// context) it is on.
type HealthAlert struct{ Name, On string }

var healthAlertKey = regexp.MustCompile(`^\s*(template|alarm|on)\s*:\s*(\S+)`)

// HealthAlerts lists the alerts a health file defines, with their charts,
// failing t when it cannot be read or defines none.
func HealthAlerts(t testing.TB, path string) []HealthAlert {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []HealthAlert
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		m := healthAlertKey.FindStringSubmatch(sc.Text())
		switch {
		case m == nil:
		case m[1] == "on" && len(out) > 0 && out[len(out)-1].On == "":
			out[len(out)-1].On = m[2]
		case m[1] != "on":
			out = append(out, HealthAlert{Name: m[2]})
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s defines no alert", path)
	}
	return out
}
