# table.awk turns `go test -bench` output (several rounds) into run.sh's
# table: the median of each metric over the rounds, ratios against the
# baselines of the same run, and the targets. Variables: header, strict.

function median(name, unit,    n, arr, i, j, t) {
	if (!((name, unit) in vals)) return ""
	n = split(vals[name, unit], arr, " ")
	for (i = 2; i <= n; i++) { # insertion sort: a handful of rounds
		t = arr[i] + 0
		for (j = i - 1; j >= 1 && arr[j] + 0 > t; j--) arr[j + 1] = arr[j]
		arr[j + 1] = t
	}
	return arr[int((n + 1) / 2)] + 0
}

function us(v) { return v >= 1000 ? sprintf("%.2f ms", v / 1000) : sprintf("%.0f us", v) }

function row(what, measured, versus, target, result,    l) {
	l = sprintf("%-36s %-64s %-30s %-12s %s", what, measured, versus, target, result)
	sub(/ +$/, "", l)
	print l
	if (result ~ /MISSED/) missed++
}

function has(name) { return name in rounds }

function why(name) { return (name in skip) ? "skipped: " skip[name] : "not run (see the log above)" }

function query(name,    mean, p50) {
	if (!has(name)) return why(name)
	mean = median(name, "ns/op") / 1000
	p50 = median(name, "p50-us")
	return sprintf("mean %s, p50 %s, p99 %s, max %s; CPU %s",
		us(mean), us(p50), us(median(name, "p99-us")), us(median(name, "max-us")), us(median(name, "cpu-us/op")))
}

function ratio(name, base, unit,    b) {
	b = median(base, unit)
	return b > 0 ? median(name, unit) / b : 0
}

/^Benchmark[^ \t]+-[0-9]+[ \t]/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	sub(/^Benchmark/, "", name)
	for (i = 3; i < NF; i += 2) {
		vals[name, $(i + 1)] = ((name, $(i + 1)) in vals) ? vals[name, $(i + 1)] " " $i : $i
	}
	rounds[name]++
	next
}
/^--- SKIP: Benchmark/ { skipping = $3; sub(/^Benchmark/, "", skipping); next }
/^    / && skipping != "" {
	r = $0
	sub(/^ +[^ ]+\.go:[0-9]+: /, "", r)
	skip[skipping] = r
	skipping = ""
	next
}
{ skipping = "" }

END {
	print ""
	print header
	print ""
	row("what", "measured (median of rounds)", "against the baseline", "target", "result")
	row("----", "---------------------------", "--------------------", "------", "------")

	# One status query.
	row("query: raw AUDIT_GET round trip", query("StatusRaw"), "baseline", "", "")
	m = query("StatusOurs")
	if (has("StatusOurs") && has("StatusRaw")) {
		rm = ratio("StatusOurs", "StatusRaw", "ns/op")
		rp = ratio("StatusOurs", "StatusRaw", "p50-us")
		ok = (rm <= 1.5 && rp <= 1.5) ? "ok" : "MISSED"
		row("query: ours (netlink.Client.Status)", m, sprintf("mean %.2fx, p50 %.2fx", rm, rp), "<= 1.5x raw", ok)
		row("", "", sprintf("CPU %.2fx", ratio("StatusOurs", "StatusRaw", "cpu-us/op")), "", "")
	} else if (has("StatusOurs")) {
		row("query: ours (netlink.Client.Status)", m, "no baseline", "<= 1.5x raw", "not checked")
	} else {
		row("query: ours (netlink.Client.Status)", m, "", "<= 1.5x raw", "not checked")
	}
	foreach_other["StatusLibaudit"] = "query: go-libaudit GetStatus"
	foreach_other["StatusAuditctl"] = "query: auditctl -s (subprocess)"
	split("StatusLibaudit StatusAuditctl", others, " ")
	for (k = 1; k <= 2; k++) {
		n = others[k]
		m = query(n)
		if (has(n) && has("StatusRaw"))
			row(foreach_other[n], m, sprintf("mean %.2fx, p50 %.2fx, CPU %.1fx", ratio(n, "StatusRaw", "ns/op"),
				ratio(n, "StatusRaw", "p50-us"), ratio(n, "StatusRaw", "cpu-us/op")), "", "")
		else
			row(foreach_other[n], m, "", "", "")
	}

	# The sampler path at the default rate.
	print ""
	if (has("StatusRaw"))
		row("CPU at 4 queries/s: raw round trip", sprintf("%.4f %% of one core", median("StatusRaw", "cpu-%core@4Hz")), "baseline", "", "")
	split("SamplerKernel SamplerFake", samplers, " ")
	label["SamplerKernel"] = "CPU at 4 samples/s: sampler, kernel"
	label["SamplerFake"] = "CPU at 4 samples/s: sampler, fake"
	for (k = 1; k <= 2; k++) {
		n = samplers[k]
		if (!has(n)) { row(label[n], why(n), "", "", ""); continue }
		m = sprintf("%.4f %% of one core (%s CPU per sample)", median(n, "cpu-%core@4Hz"), us(median(n, "cpu-us/op")))
		v = (has("StatusRaw") && n == "SamplerKernel") ? sprintf("%.2fx raw", ratio(n, "StatusRaw", "cpu-us/op")) : ""
		if (n == "SamplerFake") v = "the plugin's own share"
		row(label[n], m, v, "", "")
	}

	# The whole plugin.
	print ""
	n = "Plugin"
	if (!has(n)) {
		row("whole plugin", why(n), "", "< 0.5 %, < 15 MiB", "not checked")
	} else {
		cpu = median(n, "cpu-%core")
		floor = median(n, "minloop-cpu-%core")
		floor1 = median(n, "minloop1-cpu-%core")
		x = median(n, "x-minloop") # the median of each round's ratio
		x1 = median(n, "x-minloop1")
		row("minimal loop: 4 sync AUDIT_GET/s", floor == "" ? "not measured" : sprintf("%.3f %% of one core (bench/minloop, same seconds)", floor), "baseline", "", "")
		if (floor1 != "")
			row("minimal loop on one P", sprintf("%.3f %% of one core (GOMAXPROCS=1, as the plugin runs)", floor1), "for comparison", "", "")
		if (x > 0)
			row("whole plugin: CPU, update_every 1", sprintf("%.3f %% of one core (%.3f %% by /proc/PID/stat ticks)", cpu, median(n, "cpu-%core-ticks")),
				sprintf("%.2fx the minimal loop (%.2fx on one P), median of %d", x, x1, rounds[n]), "<= 1.2x", x <= 1.2 ? "ok" : "MISSED")
		else
			row("whole plugin: CPU, update_every 1", sprintf("%.3f %% of one core (%.3f %% by /proc/PID/stat ticks)", cpu, median(n, "cpu-%core-ticks")),
				"no baseline", "<= 1.2x", "not checked")
		row("", "", "", "< 0.5 % core", cpu < 0.5 ? "ok" : "MISSED")
		hwm = median(n, "hwm-MiB")
		row("whole plugin: memory", sprintf("VmRSS %.1f MiB, VmHWM (peak) %.1f MiB", median(n, "rss-MiB"), hwm),
			"", "< 15 MiB", hwm < 15 ? "ok" : "MISSED")
		row("whole plugin: binary size", sprintf("%.2f MiB (CGO_ENABLED=0, -trimpath, -s -w)", median(n, "binary-MiB")), "", "", "")
		row("whole plugin: time to first data", sprintf("CHART %.0f ms; BEGIN %.0f ms (max %.0f ms), <= %.1f ms after its second",
			median(n, "first-chart-ms"), median(n, "first-begin-ms"), median(n, "first-begin-max-ms"), median(n, "first-begin-late-ms")),
			"BEGIN waits for a whole second", "", "")
	}
	print ""
	if (missed > 0) {
		printf "%d target(s) MISSED\n", missed
		if (strict) exit 3
	} else {
		print "every measured target met"
	}
}
