#!/usr/sbin/dtrace -s
/* execsnoop.d: new processes, as they exec, with their arguments. */
#pragma D option quiet

BEGIN
{
	printf("%-20s %6s %6s %s\n", "TIME", "PID", "PPID", "ARGS");
}

proc:::exec-success
{
	printf("%-20Y %6d %6d %s\n", walltimestamp, curpsinfo->pr_pid, curpsinfo->pr_ppid,
	    curpsinfo->pr_psargs);
}
