package netdatatest

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// recorderScript is the health "script to execute on alarm": it appends one
// line per call, the arguments each terminated by \x1f (so empty and
// space-containing arguments survive), with a single write so concurrent
// calls do not interleave.
func recorderScript(file string) string {
	return fmt.Sprintf(`#!/bin/sh
# written by auditplugin/internal/netdatatest: records alarm notifications
us=$(printf '\037')
line=""
for a in "$@"; do line="$line$a$us"; done
printf '%%s\n' "$line" >>'%s'
exit 0
`, strings.ReplaceAll(file, "'", `'\''`))
}

// Notification is one call of the alarm script, i.e. one notification Netdata
// sent. The numbers are the 1.37 argument positions (see the package
// documentation); 2.x drops family (9), so from status on each argument
// comes one earlier, and appends transition id, summary, context, component
// and type (29-33 there).
type Notification struct {
	Roles            string  // 1: recipient, "root" unless the alert sets "to"
	Host             string  // 2: registry hostname of the host the alert is for
	UniqueID         int64   // 3: alarm log entry unique_id
	AlarmID          int64   // 4
	EventID          int64   // 5
	When             int64   // 6: unix seconds
	Name             string  // 7: alert name
	Chart            string  // 8: chart id
	Family           string  // 9
	Status           string  // 10: CLEAR, WARNING, CRITICAL, ...
	OldStatus        string  // 11
	Value            float64 // 12: NaN when undefined
	OldValue         float64 // 13: NaN when undefined
	Source           string  // 14: LINE@FILE of the alert definition
	Duration         int64   // 15: seconds in the old status
	NonClearDuration int64   // 16
	Units            string  // 17
	Info             string  // 18
	ValueString      string  // 19: value with units
	OldValueString   string  // 20
	CalcExpression   string  // 21: the warn/crit/calc source that decided
	CalcValues       string  // 22: that expression with values substituted
	TotalWarnings    int64   // 23
	TotalCritical    int64   // 24
	WarnAlarms       string  // 25: name=when,... of raised warnings
	CritAlarms       string  // 26
	Classification   string  // 27
	EditCommand      string  // 28
	MachineGUID      string  // 29: the host's GUID when a parent alerts for a child; empty for the agent's own host on 1.37, its GUID on 2.x
	Summary          string  // 2.x: the alert's summary (its name when it has none)
	Context          string  // 2.x
	Args             []string
}

// AllNotifications parses every notification the agent sent, for any host,
// oldest first. It returns nil when none has been sent yet.
func (n *Netdata) AllNotifications() []Notification {
	b, err := os.ReadFile(n.NotifyFile)
	if err != nil {
		return nil
	}
	var out []Notification
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasSuffix(line, "\x1f") {
			continue // empty or partially written
		}
		out = append(out, parseNotification(strings.Split(strings.TrimSuffix(line, "\x1f"), "\x1f"), n.Major))
	}
	return out
}

func parseNotification(args []string, major int) Notification {
	// raw is the argument at position i as the script got it.
	raw := func(i int) string {
		if i-1 < len(args) {
			return args[i-1]
		}
		return ""
	}
	// s is the argument at 1.37's position i.
	s := func(i int) string {
		switch {
		case major < 2 || i < 9:
			return raw(i)
		case i == 9: // no family on 2.x
			return ""
		default:
			return raw(i - 1)
		}
	}
	i := func(k int) int64 { v, _ := strconv.ParseInt(s(k), 10, 64); return v }
	f := func(k int) float64 {
		v, err := strconv.ParseFloat(s(k), 64)
		if err != nil {
			return math.NaN()
		}
		return v
	}
	x := Notification{
		Roles: s(1), Host: s(2), UniqueID: i(3), AlarmID: i(4), EventID: i(5), When: i(6),
		Name: s(7), Chart: s(8), Family: s(9), Status: s(10), OldStatus: s(11),
		Value: f(12), OldValue: f(13), Source: s(14), Duration: i(15), NonClearDuration: i(16),
		Units: s(17), Info: s(18), ValueString: s(19), OldValueString: s(20),
		CalcExpression: s(21), CalcValues: s(22), TotalWarnings: i(23), TotalCritical: i(24),
		WarnAlarms: s(25), CritAlarms: s(26), Classification: s(27), EditCommand: s(28),
		MachineGUID: s(29), Args: args,
	}
	if major >= 2 {
		x.Summary, x.Context = raw(30), raw(31)
	}
	return x
}
