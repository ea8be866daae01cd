#!/usr/sbin/dtrace -s
/*
 * pyflow.d: Python function entries and returns, for a call-flow view.
 *
 * Traces:     CPython's USDT markers function__entry and function__return
 *             (args: filename, function name, line number).
 * Providers:  python (USDT: CPython built --with-dtrace; 3.8 to 3.11 and 3.15 and later).
 * Parameters: $target, the interpreter's process id (dtrace -p PID or -c CMD). dtk
 *             substitutes the pid, or `*` to trace every Python process.
 * Output:     one line per event:
 *   timestamp pid tid kind file line function
 *   where kind is -> for an entry and <- for a return.
 *
 * CPython 3.11 fires function__entry only while the `line` marker is enabled (its semaphore
 * is set; CPython issue #98894): the last clause enables it and records nothing. 3.15 has no
 * `line` marker, so that clause names `line` by a glob that also matches function-entry and
 * function-return (`[lf][iu]n[ec]*`): the description matches on every version with function
 * markers, and enabling those twice changes nothing.
 */

#pragma D option quiet
#pragma D option switchrate=10hz
#pragma D option bufsize=64m

python$target:::function-entry
{
	printf("%d %d %d -> %s %d %s\n", timestamp, pid, tid, copyinstr(arg0), (int)arg2,
	    copyinstr(arg1));
}

python$target:::function-return
{
	printf("%d %d %d <- %s %d %s\n", timestamp, pid, tid, copyinstr(arg0), (int)arg2,
	    copyinstr(arg1));
}

python$target:::[lf][iu]n[ec]*
/0/
{
}
