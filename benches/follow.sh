#!/bin/sh
# The followed set's cost (BENCHMARKS.md, "Following process trees"), on
# `dd if=/dev/zero of=/dev/null bs=1 count=1000000` (about two million system calls), with
# `dtk syscalls` counting every call in the kernel. Two figures per run: dd's own time, and
# the kernel's own measure of dtk's raw_syscalls program, the average nanoseconds per firing
# (run_time_ns / run_cnt in the program's fdinfo, with kernel.bpf_stats_enabled set for the
# length of the benchmark and put back after). Rounds interleave the cases, so that load from
# elsewhere falls on all of them alike.
#
# Cases: dd inside the traced tree, found by the followed-set lookup (`-c "sh -c dd"`) or by
# the pid test (`--no-follow -c dd`, dd itself the target); and dd outside it, rejected by the
# followed-set lookup (`-c 'sleep 60'`) or by the pid test (`--no-follow -c 'sleep 60'`).
#
# Usage (as root): benches/follow.sh [DTK] [ROUNDS]; prints `CASE DD_SECONDS NS_PER_FIRING`.
set -eu
dtk=${1:-target/release/dtk}
rounds=${2:-7}
dd_cmd='dd if=/dev/zero of=/dev/null bs=1 count=1000000'
stats=/proc/sys/kernel/bpf_stats_enabled
was=$(cat "$stats")
echo 1 >"$stats"
trap 'echo "$was" >"$stats"' EXIT
out=$(mktemp -d)

# dd's own figure: "… copied, 0.412 s, 2.4 MB/s".
seconds() { sed -n 's/.* copied, \([0-9.]*\) s,.*/\1/p' "$1"; }

# run_time_ns and run_cnt of the busiest program process $1 holds.
prog_stats() {
	cat /proc/"$1"/fdinfo/* 2>/dev/null |
		awk '/^run_time_ns:/ { t = $2 } /^run_cnt:/ { if ($2 > c) { c = $2; tt = t } }
		     END { print tt + 0, c + 0 }'
}

# Samples `prog_stats` of process $1 every 50 ms into $2 while it runs; the last line stands.
sample() {
	while kill -0 "$1" 2>/dev/null; do
		s=$(prog_stats "$1")
		[ "$s" = "0 0" ] || echo "$s" >"$2"
		sleep 0.05
	done
}

per_firing() { awk '{ if ($2 > 0) printf "%.1f", $1 / $2; else print "-" }' "$1"; }

# dd traced as (part of) dtk's -c command: `inside ARGS…`.
inside() {
	"$dtk" --backend linux syscalls "$@" >/dev/null 2>"$out/dd" &
	tracer=$!
	sample "$tracer" "$out/stats" &
	sampler=$!
	wait "$tracer" || true
	wait "$sampler"
	echo "$(seconds "$out/dd") $(per_firing "$out/stats")"
}

# dd run beside a dtk whose -c command is a sleep: `outside ARGS…`.
outside() {
	"$dtk" --backend linux syscalls "$@" -c 'sleep 60' >/dev/null 2>&1 &
	tracer=$!
	sleep 3
	before=$(prog_stats "$tracer")
	sh -c "$dd_cmd" 2>"$out/dd"
	after=$(prog_stats "$tracer")
	kill -INT "$tracer"
	wait "$tracer" || true
	echo "$before $after" | awk '{ printf "%.1f", ($3 - $1) / ($4 - $2) }' >"$out/ns"
	echo "$(seconds "$out/dd") $(cat "$out/ns")"
}

for round in $(seq "$rounds"); do
	sh -c "$dd_cmd" 2>"$out/dd"
	echo "untraced $(seconds "$out/dd") -"
	echo "inside-follow $(inside -c "sh -c '$dd_cmd'")"
	echo "inside-pid $(inside --no-follow -c "$dd_cmd")"
	echo "outside-follow $(outside)"
	echo "outside-pid $(outside --no-follow)"
done
rm -r "$out"
