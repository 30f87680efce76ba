package main

import "auditplugin/netlink"

// chartType is our namespace: Netdata 2.11+ has its own audit.* charts and
// refuses a chart id collected by two plugins, so ours must differ.
const chartType = "linux_audit"

// chart is one Netdata chart; ids, contexts and priorities all live here.
type chart struct {
	id       string // without the type prefix
	title    string
	units    string
	family   string
	kind     string // line, area, stacked
	priority int
	needs    netlink.Field // shown only when the kernel sends these fields
	dims     []dim
}

type dim struct {
	id        string // unique across all charts: it keys the collected values
	name      string
	algorithm string // absolute or incremental
	div       int    // 0: 1
}

func (c chart) fullID() string  { return chartType + "." + c.id }
func (c chart) context() string { return chartType + "." + c.id }

const (
	jiffiesDiv = -1 // placeholder divisor: replaced by CONFIG_HZ, or 1 with units jiffies
	usPerMs    = 1000
	bpPerPct   = 100 // utilization travels in basis points
	msPerSec   = 1000
)

var charts = []chart{
	{id: "backlog_utilization", title: "Audit backlog utilization", units: "percentage", family: "backlog", kind: "line", priority: 71000,
		dims: []dim{{id: "utilization", name: "last", div: bpPerPct}, {id: "utilization_peak", name: "peak", div: bpPerPct}}},
	{id: "backlog", title: "Audit backlog", units: "records", family: "backlog", kind: "line", priority: 71001,
		dims: []dim{{id: "backlog", name: "last"}, {id: "backlog_peak", name: "peak"}}},
	{id: "backlog_limit", title: "Audit backlog limit", units: "records", family: "backlog", kind: "line", priority: 71002,
		dims: []dim{{id: "backlog_limit", name: "limit"}, {id: "backlog_unlimited", name: "unlimited"}}},
	{id: "time_to_overflow", title: "Estimated time until the audit backlog is full", units: "seconds", family: "backlog", kind: "line", priority: 71003,
		dims: []dim{{id: "time_to_overflow", name: "estimate", div: msPerSec}}},
	{id: "backlog_max_depth", title: "Highest audit backlog since the last reset", units: "records", family: "backlog", kind: "line", priority: 71004,
		needs: netlink.FieldBacklogMaxDepth, dims: []dim{{id: "backlog_max_depth", name: "max_depth"}}},
	{id: "lost", title: "Lost audit records", units: "records/s", family: "lost", kind: "line", priority: 71010,
		dims: []dim{{id: "lost", name: "lost", algorithm: "incremental"}}},
	{id: "backlog_wait_stall", title: "Time audited processes waited for backlog space", units: "seconds/s", family: "backlog wait", kind: "area", priority: 71020,
		needs: netlink.FieldBacklogWaitTimeActual, dims: []dim{{id: "backlog_wait_stall", name: "stalled", algorithm: "incremental", div: jiffiesDiv}}},
	{id: "backlog_wait_time", title: "Configured audit backlog wait time", units: "seconds", family: "backlog wait", kind: "line", priority: 71021,
		needs: netlink.FieldBacklogWaitTime, dims: []dim{{id: "backlog_wait_time", name: "wait_time", div: jiffiesDiv}}},
	{id: "enabled", title: "Audit enabled state", units: "state", family: "status", kind: "line", priority: 71030,
		dims: []dim{{id: "enabled_disabled", name: "disabled"}, {id: "enabled_enabled", name: "enabled"}, {id: "enabled_immutable", name: "immutable"}}},
	{id: "failure_mode", title: "Audit failure mode", units: "state", family: "status", kind: "line", priority: 71031,
		dims: []dim{{id: "failure_silent", name: "silent"}, {id: "failure_printk", name: "printk"}, {id: "failure_panic", name: "panic"}}},
	{id: "daemon", title: "Audit daemon", units: "state", family: "status", kind: "line", priority: 71032,
		dims: []dim{{id: "daemon_registered", name: "registered"}, {id: "daemon_running", name: "running"}}},
	{id: "rate_limit", title: "Audit rate limit", units: "records/s", family: "status", kind: "line", priority: 71033,
		dims: []dim{{id: "rate_limit", name: "limit"}}},
	{id: "query_latency", title: "Audit status query latency", units: "milliseconds", family: "monitor", kind: "line", priority: 71040,
		dims: []dim{{id: "query_reply", name: "reply", div: usPerMs}, {id: "query_held_for", name: "held", div: usPerMs}}},
	{id: "queries_held", title: "Audit status queries the kernel holds asleep", units: "queries", family: "monitor", kind: "line", priority: 71041,
		dims: []dim{{id: "queries_held", name: "held"}}},
}

// chartsFor keeps the charts this kernel can fill and sets the jiffy
// divisors: HZ when known (it nearly always is: see host.KernelHZ), else
// the charts say jiffies.
func chartsFor(fields netlink.Field, hz int) []chart {
	var out []chart
	for _, c := range charts {
		if fields&c.needs != c.needs {
			continue
		}
		c.dims = append([]dim(nil), c.dims...)
		for i := range c.dims {
			d := &c.dims[i]
			if d.div != jiffiesDiv {
				continue
			}
			if hz > 0 {
				d.div = hz
			} else {
				// Jiffies, under another dimension name: the alerts count
				// in seconds and must not read jiffies as seconds (at HZ 250
				// a threshold of 30 would be 0.12 s).
				d.div = 1
				d.name += "_jiffies"
				c.units = replaceSeconds(c.units)
			}
		}
		out = append(out, c)
	}
	return out
}

func replaceSeconds(units string) string {
	switch units {
	case "seconds":
		return "jiffies"
	case "seconds/s":
		return "jiffies/s"
	}
	return units
}
