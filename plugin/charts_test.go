package main

import (
	"strings"
	"testing"

	"auditplugin/netlink"
)

const allFields = netlink.FieldFeatureBitmap | netlink.FieldBacklogWaitTime | netlink.FieldBacklogWaitTimeActual | netlink.FieldBacklogMaxDepth

// Dimension ids key the collected values, so they must be unique across charts.
func TestDimensionIDsUnique(t *testing.T) {
	seen := map[string]string{}
	for _, c := range charts {
		for _, d := range c.dims {
			if other, dup := seen[d.id]; dup {
				t.Errorf("dimension %s in %s and %s", d.id, other, c.id)
			}
			seen[d.id] = c.id
		}
	}
}

// Every value collect can produce has a dimension to go to, and every
// dimension is filled by a healthy 48-byte reply.
func TestCollectMatchesCharts(t *testing.T) {
	st := netlink.Status{Enabled: netlink.Enabled, BacklogLimit: 100, Backlog: 5, Fields: allFields, PID: 1}
	v := collect(window{samples: 1, last: st, peakUtilBP: 500, overflowOK: true}, func(uint32) bool { return true })
	dims := map[string]bool{}
	for _, c := range chartsFor(allFields, 250) {
		for _, d := range c.dims {
			dims[d.id] = true
			if _, ok := v[d.id]; !ok {
				t.Errorf("dimension %s has no value", d.id)
			}
		}
	}
	for k := range v {
		if !dims[k] {
			t.Errorf("value %s has no dimension: Netdata 1.37 would disable the plugin", k)
		}
	}
}

func TestChartsForFields(t *testing.T) {
	ids := func(cs []chart) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.id)
		}
		return strings.Join(s, " ")
	}
	old := ids(chartsFor(0, 250))
	for _, id := range []string{"backlog_wait_stall", "backlog_wait_time", "backlog_max_depth"} {
		if strings.Contains(" "+old+" ", " "+id+" ") {
			t.Errorf("32-byte reply: chart %s defined", id)
		}
	}
	if got := ids(chartsFor(allFields, 250)); len(strings.Fields(got)) != len(charts) {
		t.Errorf("all fields: charts %s, want all %d", got, len(charts))
	}
}

// HZ known: seconds with divisor HZ; unknown: jiffies with divisor 1. The
// shared chart table is never changed by either.
func TestChartsForHZ(t *testing.T) {
	find := func(cs []chart, id string) chart {
		for _, c := range cs {
			if c.id == id {
				return c
			}
		}
		t.Fatalf("no chart %s", id)
		return chart{}
	}
	for _, tc := range []struct {
		hz          int
		stall, wait string
		div         int
	}{{250, "seconds/s", "seconds", 250}, {0, "jiffies/s", "jiffies", 1}, {1000, "seconds/s", "seconds", 1000}} {
		cs := chartsFor(allFields, tc.hz)
		s, w := find(cs, "backlog_wait_stall"), find(cs, "backlog_wait_time")
		if s.units != tc.stall || w.units != tc.wait || s.dims[0].div != tc.div || w.dims[0].div != tc.div {
			t.Errorf("HZ %d: %s %s div %d, %s %s div %d", tc.hz, s.id, s.units, s.dims[0].div, w.id, w.units, w.dims[0].div)
		}
	}
	for _, c := range charts {
		if c.id == "backlog_wait_stall" || c.id == "backlog_wait_time" {
			if c.units == "jiffies" || c.units == "jiffies/s" || c.dims[0].div != jiffiesDiv {
				t.Errorf("chartsFor changed the shared table: %s %s div %d", c.id, c.units, c.dims[0].div)
			}
		}
	}
}
