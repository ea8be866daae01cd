#!/usr/sbin/dtrace -s
/*
 * syscalls.d: system call counts, errors and time, per call and per process.
 *
 * Traces:     every system call, at entry (counts) and, when time or errors are asked
 *             for, at return.
 * Providers:  syscall.
 * Parameters: the inline constants below. dtk sets them from its options; to run this file
 *             by hand, edit them.
 *   FILTER_PID   -p PID or -c: only this process (0: every process).
 *   FOLLOW       1: also its descendants (progenyof), as dtk does by default for -p and -c
 *                (--no-follow: 0). dtk's Linux engine follows the tree itself, in a kernel
 *                map kept at fork and exit, and then sets FILTER_PID to 0 and FOLLOW to 0.
 *   FILTER_NAME  -n NAME: only processes whose execname is exactly this ("": all).
 *   FILTER_ZONE  -z ZONE: only this zone; on Linux a cgroup ("": all).
 *   BY_PROCESS   -P: 1 to key the counts by process as well as by call.
 *   TIMED        -L, --hist, --live: 1 to time calls from entry to return.
 *   ERRORS       -e, --live: 1 to count failed calls by errno at return.
 *   HIST_CALL    --hist CALL: the call whose latency is shown as a histogram ("": none).
 *   INTERVAL     -i SECONDS: print and reset the counts every SECONDS (0: only at exit).
 *   SNAPSHOT     --live: 1 to print the running totals every second, without resetting.
 * Output:     aggregations, keyed by [pid, execname, call] (pid 0 and execname "" without
 *             BY_PROCESS):
 *   @calls   count()                   calls entered
 *   @time    sum(ns)                   time from entry to return, per thread
 *   @errnos  count()                   calls that failed, with the errno as a fourth key
 *   @hist    quantize(ns)              latency of HIST_CALL
 *   With INTERVAL, every INTERVAL seconds: printa of each, then the line
 *   "interval WALLTIMESTAMP", then the counts start again from zero; and at the end the
 *   same for the last, partial interval.
 *   With SNAPSHOT, every second: printa of each, then the line "snapshot WALLTIMESTAMP".
 *   dtk reads these lines and keys as the contract in src/commands/syscalls.rs (CONTRACT)
 *   declares them; a unit test fails when the two disagree.
 */

#pragma D option quiet

inline int FILTER_PID = 0;
inline int FOLLOW = 0;
inline string FILTER_NAME = "";
inline string FILTER_ZONE = "";
inline int BY_PROCESS = 0;
inline int TIMED = 0;
inline int ERRORS = 0;
inline string HIST_CALL = "";
inline int INTERVAL = 0;
inline int SNAPSHOT = 0;

syscall:::entry
/(FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE)/
{
	@calls[BY_PROCESS ? pid : 0, BY_PROCESS ? execname : "", probefunc] = count();
}

syscall:::entry
/TIMED &&
 (FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE)/
{
	self->start = timestamp;
}

syscall:::return
/TIMED && self->start/
{
	this->ns = timestamp - self->start;
	@time[BY_PROCESS ? pid : 0, BY_PROCESS ? execname : "", probefunc] = sum(this->ns);
}

syscall:::return
/ERRORS && errno != 0 &&
 (FILTER_PID == 0 || !FOLLOW && pid == FILTER_PID ||
  FOLLOW && progenyof(FILTER_PID)) &&
 (FILTER_NAME == "" || execname == FILTER_NAME) &&
 (FILTER_ZONE == "" || zonename == FILTER_ZONE)/
{
	@errnos[BY_PROCESS ? pid : 0, BY_PROCESS ? execname : "", probefunc, errno] = count();
}

syscall:::return
/TIMED && self->start && probefunc == HIST_CALL/
{
	@hist[probefunc] = quantize(timestamp - self->start);
}

syscall:::return
/TIMED && self->start/
{
	self->start = 0;
}

tick-1s
/INTERVAL/
{
	ticks++;
}

tick-1s
/INTERVAL && ticks >= INTERVAL/
{
	printa(@calls);
	printa(@time);
	printa(@errnos);
	printf("interval %d\n", walltimestamp);
	trunc(@calls);
	trunc(@time);
	trunc(@errnos);
	ticks = 0;
}

END
/INTERVAL/
{
	printa(@calls);
	printa(@time);
	printa(@errnos);
	printf("interval %d\n", walltimestamp);
}

tick-1s
/SNAPSHOT/
{
	printa(@calls);
	printa(@time);
	printa(@errnos);
	printf("snapshot %d\n", walltimestamp);
}
