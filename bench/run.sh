#!/usr/bin/env bash
# bench/run.sh — the numbers behind "fast and never stuck", in one table.
#
# Measures on the real kernel (needs root; benchmarks skip otherwise):
#   - one audit status query: ours (netlink.Client.Status) against a raw
#     AUDIT_GET round trip, go-libaudit's GetStatus and `auditctl -s`;
#   - the sampler path's CPU at the default rate (4 queries/s);
#   - the whole plugin at update_every 1: CPU (against bench/minloop, the
#     same 4 AUDIT_GET a second synchronously on one goroutine, as Go runs
#     it by default and on one P, measured beside it over the same seconds,
#     in rounds: the median of the rounds' ratios), RSS, binary size, time
#     to first data;
# and prints one table with ratios against the baselines of the same run and
# the targets (MISSED where one is missed).
#
# Environment: BENCHTIME (per query benchmark, default 3s), ROUNDS (query
# and sampler benchmarks are repeated in rounds, interleaved, then the whole
# plugin; the median is reported; default 3), BENCH_PLUGIN_SECONDS (20), BENCH_PLUGIN_STARTS
# (5), AUDITCTL (path to auditctl; otherwise from $PATH, otherwise unpacked
# from Debian's auditd package into AUDITCTL_CACHE without installing it, so
# no auditd is ever started), BENCH_STRICT=1 (exit 3 when a target is missed).
#
# The run holds the kernel test lock (kerneltest.LockFile) throughout, and
# each kernel benchmark waits for an empty audit backlog, so none runs while
# a kernel test overflows it. BENCH_LOCK_WAIT (1800 s) bounds the wait for it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

BENCHTIME=${BENCHTIME:-3s}
ROUNDS=${ROUNDS:-3}
AUDITCTL_CACHE=${AUDITCTL_CACHE:-/var/cache/auditplugin-bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/bench.txt"
: >"$out"

note() { echo "bench: $*" >&2; }

# auditctl for the subprocess baseline. The auditd package's postinst would
# start the daemon (which registers with the kernel as the audit daemon), so
# it is never installed: its files are unpacked with dpkg -x.
find_auditctl() {
  if [ -n "${AUDITCTL:-}" ]; then return; fi
  if command -v auditctl >/dev/null 2>&1; then
    AUDITCTL=$(command -v auditctl)
    return
  fi
  local root="$AUDITCTL_CACHE/root"
  if [ ! -x "$root/sbin/auditctl" ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      note "auditctl not available and cannot be fetched (needs root and apt-get); its benchmark will skip"
      return
    fi
    note "fetching auditctl: apt-get download auditd libauparse0, unpacked into $AUDITCTL_CACHE (not installed)"
    mkdir -p "$AUDITCTL_CACHE"
    if ! (cd "$AUDITCTL_CACHE" && rm -f ./*.deb &&
      apt-get download auditd libauparse0 >/dev/null 2>&1 &&
      for deb in ./*.deb; do dpkg -x "$deb" root; done); then
      note "could not fetch auditd (try: apt-get update); its benchmark will skip"
      return
    fi
  fi
  AUDITCTL="$root/sbin/auditctl"
  AUDITCTL_LD_LIBRARY_PATH="$root/lib/x86_64-linux-gnu:$root/usr/lib/x86_64-linux-gnu:$root/lib:$root/usr/lib"
  export AUDITCTL_LD_LIBRARY_PATH
}
find_auditctl
if [ -n "${AUDITCTL:-}" ]; then export AUDITCTL; fi

# The plugin as it ships: static, trimmed, no symbol tables.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/audit.plugin" ./plugin
export AUDIT_PLUGIN_BINARY="$work/audit.plugin"
# Its floor, built the same way: the same queries, synchronously, on one goroutine.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/minloop" ./bench/minloop
export AUDIT_MINLOOP_BINARY="$work/minloop"

# Test binaries built once; rounds interleave the benchmarks so that a
# change in the machine's load during the run affects all of them alike.
go test -c -o "$work/bench.test" ./bench
go test -c -o "$work/plugin.test" ./plugin

# The kernel test lock, held for the whole run: per benchmark, another
# engineer's kernel test (which may hold it for many minutes and overflow
# the backlog) could slip in between two of ours. A state left by a killed
# kernel test is restored first.
LOCK=/run/lock/auditplugin-kernel.lock
RECOVERY=/run/auditplugin-kerneltest.json
acquire() {
  local waited=0
  until flock -n 9; do
    if [ "$waited" -ge "${BENCH_LOCK_WAIT:-1800}" ]; then
      note "kernel test lock still held after ${waited}s by: $(cat "$LOCK")"
      exit 1
    fi
    if [ $((waited % 60)) -eq 0 ]; then note "waiting for the kernel test lock, held by: $(cat "$LOCK")"; fi
    sleep 5
    waited=$((waited + 5))
  done
}
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$(dirname "$LOCK")"
  exec 9<>"$LOCK"
  acquire
  # With the lock ours, a recovery file is a killed test's leftover:
  # audit-restore (which takes the lock itself) puts the state back.
  for attempt in 1 2 3; do
    [ -e "$RECOVERY" ] || break
    flock -u 9
    go run ./cmd/audit-restore >&2 || note "audit-restore failed (attempt $attempt)"
    acquire
  done
  if [ -e "$RECOVERY" ]; then
    note "$RECOVERY is still there: the audit state is not the machine's own; not measuring"
    exit 1
  fi
  # Name the holder like kerneltest does; the benchmarks check that it is
  # an ancestor of theirs instead of waiting for the lock themselves.
  printf 'pid %d bench/run.sh\n' $$ >"$LOCK"
  export AUDITPLUGIN_BENCH_LOCK_HELD=1
fi


run() { # dir binary pattern benchtime
  # 9<&-: the lock stays with this script, not with what it starts.
  (cd "$1" && exec "$2" -test.run '^$' -test.bench "$3" -test.benchtime "$4" -test.v 9<&-) 2>&1 |
    grep -E '^(Benchmark|--- (SKIP|FAIL)|    |FAIL|panic)' | tee -a "$out" >&2 || true
}

note "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  note "round $r of $ROUNDS"
  run bench "$work/bench.test" '^BenchmarkStatus(Raw|Ours|Libaudit|Auditctl)$' "$BENCHTIME"
  run plugin "$work/plugin.test" '^BenchmarkSampler(Kernel|Fake)$' "$BENCHTIME"
done
for r in $(seq 1 "$ROUNDS"); do
  note "whole plugin, round $r of $ROUNDS (about $((${BENCH_PLUGIN_SECONDS:-20} + 2 + ${BENCH_PLUGIN_STARTS:-5})) s)"
  run bench "$work/bench.test" '^BenchmarkPlugin$' 1x
done

kernel=$(uname -r)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
header="audit.plugin benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), Linux $kernel, $cpu, $(nproc) cores, $(go env GOVERSION), load $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v header="$header" -v strict="${BENCH_STRICT:-0}" -f bench/table.awk "$out"
