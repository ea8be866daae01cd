#!/bin/sh
# The followed set's cost (BENCHMARKS.md, "Following process trees"): dd's own time for
# `dd if=/dev/zero of=/dev/null bs=1 count=1000000` run under `sh -c`, about two million
# system calls, with `dtk syscalls` counting them in the kernel in several ways. Rounds
# interleave the cases, so that load from elsewhere falls on all of them alike.
#
# Usage (as root): benches/follow.sh [DTK] [ROUNDS]; prints one line per case and round:
# CASE SECONDS.
set -eu
dtk=${1:-target/release/dtk}
rounds=${2:-7}
dd_cmd='dd if=/dev/zero of=/dev/null bs=1 count=1000000'

# dd's own figure: "… copied, 0.412 s, 2.4 MB/s".
seconds() { sed -n 's/.* copied, \([0-9.]*\) s,.*/\1/p'; }

# A tracer in the background, given time to attach, then dd under sh -c, then Ctrl-C.
beside() {
	"$dtk" --backend linux syscalls "$@" >/dev/null 2>&1 &
	tracer=$!
	sleep 3
	t=$(sh -c "$dd_cmd" 2>&1 | seconds)
	kill -INT "$tracer"
	wait "$tracer" || true
	echo "$t"
}

for round in $(seq "$rounds"); do
	echo "untraced $(sh -c "$dd_cmd" 2>&1 | seconds)"
	# dd is in the followed tree: each call passes the followed-set lookup and is counted.
	echo "follow-c $("$dtk" --backend linux syscalls -c "sh -c '$dd_cmd'" 2>&1 >/dev/null | seconds)"
	# dd counted without following: its calls pass the kernel's execname test instead.
	echo "name-dd $(beside -n dd)"
	# dd outside the traced process: rejected by the followed-set lookup, or by the pid test.
	echo "outside-follow $(beside -c 'sleep 60')"
	echo "outside-no-follow $(beside --no-follow -c 'sleep 60')"
done
