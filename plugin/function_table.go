package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"auditplugin/netlink"
)

// statusRow is one line of the table: a field, its value and what it means.
type statusRow struct {
	field, value, meaning string
	severity              string // "", "notice", "warning" or "error"
}

// statusTable renders the audit-status answer: a Netdata Functions table
// (type "table", has_history false) that 2.x dashboards draw and 1.37 passes
// through as JSON. It is pure: the caller gives it the latest sample.
func statusTable(s trackerSnapshot, rules string, hz int, exists func(uint32) bool, now time.Time) []byte {
	rows := statusRows(s, rules, hz, exists, now)
	data := make([][]any, 0, len(rows))
	for _, r := range rows {
		row := []any{r.field, r.value, r.meaning}
		sev := r.severity
		if sev == "" {
			sev = "normal"
		}
		row = append(row, map[string]any{"rowOptions": map[string]string{"severity": sev}})
		data = append(data, row)
	}
	col := func(index int, name string, unique, sticky, wrap bool) map[string]any {
		return map[string]any{
			"index": index, "name": name, "type": "string", "unique_key": unique,
			"visible": true, "sticky": sticky, "sortable": true, "filter": "multiselect",
			"full_width": wrap, "wrap": wrap, "visualization": "value",
		}
	}
	doc := map[string]any{
		"status":              200,
		"type":                "table",
		"has_history":         false,
		"help":                functionHelp,
		"update_every":        1,
		"expires":             now.Add(time.Second).Unix(),
		"accepted_params":     []string{},
		"required_params":     []any{},
		"default_sort_column": "field",
		"columns": map[string]any{
			"field":   col(0, "Field", true, true, false),
			"value":   col(1, "Value", false, false, false),
			"meaning": col(2, "Meaning", false, false, true),
			"rowOptions": map[string]any{
				"index": 3, "name": "rowOptions", "type": "none", "visible": false, "dummy": true,
				"unique_key": false, "sortable": false, "sticky": false, "filter": "none",
				"visualization": "rowOptions",
			},
		},
		"data": data,
	}
	// Indented: Netdata reads the body line by line, with a bounded line length.
	b, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		panic(err) // only strings, numbers and maps: cannot fail
	}
	return b
}

func statusRows(s trackerSnapshot, rules string, hz int, exists func(uint32) bool, now time.Time) []statusRow {
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	if !s.seen {
		return []statusRow{
			{"status", "not sampled yet", "The plugin has not read the kernel's audit status yet.", "notice"},
			{"rules", rules, "Audit rules loaded in the kernel (auditctl -l), counted with AUDIT_LIST_RULES.", ""},
		}
	}
	st := s.last
	var rows []statusRow
	add := func(field, value, meaning, severity string) {
		rows = append(rows, statusRow{field, value, meaning, severity})
	}

	sev := ""
	if st.Enabled == netlink.Disabled {
		sev = "notice"
	}
	add("enabled", fmt.Sprintf("%d (%s)", uint32(st.Enabled), st.Enabled),
		"Audit state (auditctl -e): 0 disabled, 1 enabled, 2 immutable (locked until reboot).", sev)

	sev = ""
	if st.Failure == netlink.FailurePanic {
		sev = "warning"
	}
	add("failure", fmt.Sprintf("%d (%s)", uint32(st.Failure), st.Failure),
		"What the kernel does when it must drop a record (auditctl -f): 0 silent, 1 printk (logs it), 2 panic (crashes the machine on the first lost record).", sev)

	pid := "0 (none registered)"
	if st.PID != 0 {
		pid = fmt.Sprint(st.PID)
	}
	add("pid", pid, "Process id of the registered audit daemon (auditd). Without one, records go to the kernel log or are lost.", "")

	alive, sev := "no daemon registered", ""
	if st.PID != 0 {
		if exists(st.PID) {
			alive = "yes"
		} else {
			alive, sev = "no (the registered process is gone)", "error"
		}
	}
	if st.PID == 0 && st.Enabled != netlink.Disabled {
		sev = "warning"
	}
	add("daemon_alive", alive, "Whether the registered audit daemon's process exists now (checked in /proc when this table was made).", sev)

	add("rate_limit", withZero(st.RateLimit, "unlimited"), "Most records per second the kernel emits (auditctl -r); 0 is unlimited.", "")
	add("backlog_limit", withZero(st.BacklogLimit, "unlimited"), "Most records queued for the audit daemon (auditctl -b); 0 is unlimited. A full backlog loses records, or waits (backlog_wait_time).", "")

	backlog, sev := fmt.Sprint(st.Backlog), ""
	if st.BacklogLimit > 0 {
		util := float64(st.Backlog) * 100 / float64(st.BacklogLimit)
		backlog = fmt.Sprintf("%d (%.1f%% of the limit)", st.Backlog, util)
		if util >= 80 {
			sev = "warning"
		}
	}
	add("backlog", backlog, "Records waiting for the audit daemon now.", sev)

	add("lost", fmt.Sprint(st.Lost), "Records the kernel dropped since boot or the last auditctl --reset-lost (backlog full, rate limit or no memory): each one is lost security evidence.", "")

	if st.Has(netlink.FieldFeatureBitmap) {
		add("feature_bitmap", fmt.Sprintf("%#x (%s)", st.FeatureBitmap, featureNames(st.FeatureBitmap)), "Audit features this kernel supports (AUDIT_FEATURE_BITMAP_*).", "")
	}
	if st.Has(netlink.FieldBacklogWaitTime) {
		add("backlog_wait_time", jiffies(st.BacklogWaitTime, hz),
			"How long a process may sleep waiting for backlog space when the backlog is full (auditctl --backlog_wait_time). While the backlog is over its limit, every sender of an audit netlink message sleeps up to this long.", "")
	}
	if st.Has(netlink.FieldBacklogWaitTimeActual) {
		add("backlog_wait_time_actual", jiffies(st.BacklogWaitTimeActual, hz),
			"Total time audited processes slept waiting for backlog space, since boot or the last reset.", "")
	}
	if st.Has(netlink.FieldBacklogMaxDepth) {
		add("backlog_max_depth", fmt.Sprint(st.BacklogMaxDepth), "The highest backlog the kernel has seen.", "")
	}
	add("mask", fmt.Sprintf("%#x", st.Mask), "Which fields an AUDIT_SET request changes; carries no meaning in a status reply.", "")
	add("reply_bytes", fmt.Sprint(st.ReplyBytes), "Size of the kernel's status reply: 32 bytes up to Linux 3.13, 40 from 3.14, 44 from 5.9; it tells which fields above this kernel has.", "")

	add("rules", rules, "Audit rules loaded in the kernel (auditctl -l), counted with AUDIT_LIST_RULES.", "")
	add("peak_backlog", fmt.Sprintf("%d at %s", s.peakBacklog, at(s.peakAt)),
		fmt.Sprintf("Highest backlog the plugin sampled since it started (%s).", at(s.started)), "")
	if s.lastLostAt.IsZero() {
		add("last_lost", "none since the plugin started", fmt.Sprintf("When the plugin last saw the lost counter rise (it started %s).", at(s.started)), "")
	} else {
		add("last_lost", fmt.Sprintf("%s (%d records lost since the plugin started)", at(s.lastLostAt), s.lostSince),
			"When the plugin last saw the lost counter rise: a record was lost between that sample and the one before.", "warning")
	}
	age := now.Sub(s.lastAt).Round(100 * time.Millisecond)
	sev = ""
	if age > 10*time.Second {
		sev = "notice"
	}
	add("sampled_at", fmt.Sprintf("%s (%v ago)", at(s.lastAt), age),
		"When the status above was read: the plugin's latest sample (no new status query is sent for this table; a late sample means the kernel is holding queries).", sev)
	return rows
}

func withZero(v uint32, zero string) string {
	if v == 0 {
		return "0 (" + zero + ")"
	}
	return fmt.Sprint(v)
}

func jiffies(j uint32, hz int) string {
	if hz <= 0 {
		return fmt.Sprintf("%d jiffies (CONFIG_HZ unknown)", j)
	}
	return fmt.Sprintf("%d jiffies (%.3g s at CONFIG_HZ=%d)", j, float64(j)/float64(hz), hz)
}

// featureNames decodes AUDIT_FEATURE_BITMAP_* (include/uapi/linux/audit.h).
func featureNames(b uint32) string {
	names := []string{"backlog_limit", "backlog_wait_time", "executable_path", "exclude_extend", "sessionid_filter", "lost_reset", "filter_fs"}
	var have []string
	for i, n := range names {
		if b&(1<<i) != 0 {
			have = append(have, n)
		}
	}
	if rest := b &^ (1<<len(names) - 1); rest != 0 {
		have = append(have, fmt.Sprintf("unknown %#x", rest))
	}
	if len(have) == 0 {
		return "none"
	}
	return strings.Join(have, ", ")
}
