// Package netdatatest starts real, throwaway Netdata agents for integration tests
// and reads their API, logs and alert notifications.
//
// Everything below was established by running Debian 12's netdata 1.37.1
// (/usr/sbin/netdata, built without cloud/ACLK and without ML) on this
// machine, as root, without systemd and with only loopback networking.
//
// # Running an instance
//
// Start writes a netdata.conf with every directory under t.TempDir() and runs
// `netdata -c CONF -D -P PIDFILE` in its own process group. /api/v1/info
// answers in well under a second. SIGTERM stops it within a second; at exit
// Netdata SIGTERMs each plugin and closes its pipe, so a shell plugin that
// traps TERM still dies of SIGPIPE on its next write. A plugin that ignores
// both, and anything a plugin started in a new session (setsid), outlives
// Netdata; Stop therefore also kills the process group (which holds the
// spawn server, plugins and alarm scripts) and every process whose
// environment carries this instance's NETDATA_LIB_DIR.
//
// netdata.conf keys that work in 1.37 (the full effective file is at
// /netdata.conf on a running agent):
//
//	[global]      run as user = netdata|root, hostname = NAME
//	[db]          mode = ram, update every = N  (1.37 uses [db]; the old
//	              [global] memory mode = ram is still honoured)
//	[directories] config, stock config, log, cache, lib, home,
//	              plugins = "DIR1" "DIR2" (quoted list; the first is the
//	              "primary" dir, exported as NETDATA_PLUGINS_DIR, the rest as
//	              NETDATA_USER_PLUGINS_DIRS), health config, stock health config
//	[logs]        errors flood protection period = 0 (0 disables throttling)
//	[web]         bind to = 127.0.0.1:PORT
//	[registry]    enabled = no
//	[plugins]     timex, idlejitter, netdata monitoring, tc, diskspace, proc,
//	              cgroups, statsd, slabinfo = no (the internal collectors);
//	              statsd would otherwise listen on 127.0.0.1:8125 and collide
//	              between instances. External stock plugins (apps, python.d,
//	              charts.d, go.d, ...) only run when their *.plugin file is in a
//	              plugins directory, which here it never is.
//	              enable running new plugins = yes runs every executable
//	              *.plugin found; with "no", [plugins] NAME = yes enables one.
//	[plugin:NAME] command options = ..., update every = N
//	[health]      enabled, script to execute on alarm, run at least every
//	              seconds (default 10; set to 1 here), enable stock health
//	              configuration
//
// There are no [ml] or [cloud] sections in this build. Anonymous statistics
// run anonymous-statistics.sh from the primary plugins directory, which here
// does not contain it; DO_NOT_TRACK=1 and the opt-out file are set as well.
//
// # How a plugin is started
//
// Netdata runs every executable *.plugin of its plugin directories as
// `/bin/sh -c "exec PATH UPDATE_EVERY OPTIONS"`, as the "run as user", in
// Netdata's process group. argv[1] is the update interval and the rest are
// the [plugin:NAME] command options. Its environment includes NETDATA_*
// variables (NETDATA_PLUGINS_DIR, NETDATA_USER_PLUGINS_DIRS,
// NETDATA_USER_CONFIG_DIR, NETDATA_STOCK_CONFIG_DIR, NETDATA_LOG_DIR,
// NETDATA_LIB_DIR, NETDATA_CACHE_DIR, NETDATA_UPDATE_EVERY, NETDATA_HOSTNAME,
// NETDATA_VERSION=v1.37.1, NETDATA_HOST_PREFIX, the NETDATA_SYSTEM_* values of
// system-info.sh, and NETDATA_LISTEN_PORT, which is the [web] default port
// 19999, not the bound one) and HOME = [directories] home. Its stderr goes
// to error.log.
//
// # The system-info.sh crash
//
// Netdata 1.37.1 as a streaming child aborts ("munmap_chunk(): invalid
// pointer" in the sender thread, cf. netdata/netdata#15182) when
// system-info.sh was not found in the primary plugins directory, because the
// system info fields it later frees were never allocated. Start therefore puts
// a stub system-info.sh (fixed values, no network; the stock one probes cloud
// metadata endpoints with curl) into a harness-owned primary plugins
// directory and lists Options.PluginsDir second.
//
// # Health
//
// The health loop runs every min("run at least every seconds", next alert
// due). With `every: 1s` and run at least every 1 s:
//
//   - An alert is first evaluated once its chart has two collections and the
//     whole lookup window has data: `lookup: max -5s` about 4 s after the
//     chart's first data, `lookup: max -1m` about 59-60 s after it.
//   - Until then the alert is UNINITIALIZED; the first evaluation logs
//     UNINITIALIZED->CLEAR (not notified: Netdata never notifies a CLEAR for
//     an alert it has not notified before) or UNINITIALIZED->WARNING
//     (notified).
//   - With `lookup: max -Ns`, a raised value is seen within 1-2 s; the return
//     to CLEAR takes about N s, until the high samples leave the window (the
//     tests measure 0-2 s to the first evaluation of a -3s alert once the
//     chart has two values, 1-2 s to WARNING and 3-4 s back to CLEAR).
//   - A parent first evaluates a child's alerts 4-11 s after the child
//     connected (measured, with the postponement set to 0), although the
//     child's chart has data on the parent after about 3 s.
//   - kill -USR2 reloads the health configuration (Netdata.ReloadHealth).
//
// Configuration errors go to error.log as "Health configuration at line N of
// file 'F' ..." or "Health configuration for template 'X' is useless ..."
// (see HealthConfigErrors). The `summary` key does not exist in 1.37: it is
// logged as an unknown key and the alert still loads. Alert events are also
// written to health.log ("Alert event for [CHART.NAME], value [...], status
// [...]").
//
// /api/v1/alarm_log?after=ID returns entries whose unique_id is strictly
// greater than ID, newest first. unique_id is not a timestamp to compare
// with time.Now, although 1.37 seeds it from the clock. /api/v1/alarms?all
// HTML-escapes the warn/crit expressions (&gt;); Alarm unescapes them.
//
// # Notifications
//
// The "script to execute on alarm" is run as
// `exec SCRIPT 'roles' 'host' ...` through the spawn server, as the "run as
// user", with 29 arguments in 1.37 (1-based):
//
//	 1 roles (recipient, "root" by default)  16 non_clear_duration
//	 2 host (registry hostname)              17 units
//	 3 unique_id                             18 info
//	 4 alarm_id                              19 value_string
//	 5 event_id                              20 old_value_string
//	 6 when (unix seconds)                   21 calc expression source
//	 7 name                                  22 calc expression with values
//	 8 chart                                 23 total warnings
//	 9 family                                24 total critical
//	10 status                                25 warning alarms (name=when,...)
//	11 old status                            26 critical alarms
//	12 value ("nan" when undefined)          27 classification
//	13 old value                             28 edit command
//	14 source (LINE@FILE)                    29 machine GUID of the host the
//	15 duration                                 alert is for; empty for the
//	                                            agent's own host
//
// Start installs a recorder script there; see Notification.
//
// # Data
//
// /api/v1/data?chart=ID&after=-N&format=json returns {"labels": ["time",
// DIMS...], "data": [[t, v...], ...]} newest first, null for gaps. Right after
// a chart's first collection the newest slot briefly reads 0 and then turns
// into a gap; real values start with the second collection, so WaitChart
// waits for two.
//
// # Streaming
//
// Child: stream.conf `[stream] enabled = yes, destination = 127.0.0.1:PORT,
// api key = KEY` (KEY must be a UUID). Parent: stream.conf `[KEY] enabled =
// yes, default memory mode = ram, health enabled by default = yes, default
// postpone alarms on connect seconds = 0` (otherwise the parent postpones
// its alerts for a newly connected child by 60 s; in an API key section only
// the "default ..." spelling applies, the plain one belongs to a
// [MACHINE_GUID] section). A child connects within about a second of both running.
// The parent serves the child's API at /host/HOSTNAME/api/v1/... and
// /host/MACHINE_GUID/api/v1/...; a hostname resolves to the first host of that
// name the parent ever saw, so use the GUID (Netdata.WaitHost does). The
// parent's /api/v1/info lists children in mirrored_hosts_status with
// reachable and hops. The parent evaluates its own health configuration for
// the child and runs its own alarm script; such notifications carry the
// child's machine GUID in argument 29.
//
// # Netdata 2.x
//
// Options.Binary selects the agent; Agents lists the test matrix (Debian's
// 1.37 and Netdata 2.11 in /opt/netdata2, which Agent.Require installs from
// ../shared/netdata-2.11 with .ci/netdata2.sh). Start reads the binary's
// version (netdata -v) and, for 2.x, adds to netdata.conf [logs] method =
// file with daemon.log, collector.log and health.log (2.x has no error.log;
// ErrorLog reads daemon.log and collector.log), [ml] enabled = no, and gives
// the instance a private run directory (NETDATA_RUN_DIR: its pipe, IPC
// sockets and spawn server). Options.StockPlugins runs plugins of the
// agent's own plugins directory (debugfs.plugin, Netdata's audit module) and
// Options.StockHealth loads its stock alerts. Measured on 2.11.0 here:
//   - health configuration errors are logfmt lines with level=error; an
//     unknown key reads "... for alarm/template 'NAME' has unknown key 'K'."
//     (1.37: "for template 'NAME'"); alert sources read line=N,file=PATH
//     (1.37: N@PATH).
//   - the alarm script's arguments drop family (1.37's 9th) and add the
//     transition id, summary, context, component and type; the 28th, the
//     host's machine GUID, is set for the agent's own host too.
//   - /api/v1/alarm_log answers with an empty body ("Failed to prepare
//     statement SQL_SELECT_HEALTH_LOG" in daemon.log), so Host.AlarmLog
//     returns the notified transitions on 2.x (same ids, times, statuses and
//     values); the first UNINITIALIZED->CLEAR is never notified: wait for
//     the current status (/api/v1/alarms) instead.
//   - /api/v1/alarms shows each alert's summary; there is no dashboard UI.
package netdatatest
