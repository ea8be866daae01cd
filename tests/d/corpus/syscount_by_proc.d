#!/usr/sbin/dtrace -s
/* syscount_by_proc.d: system calls by process name. */
#pragma D option quiet

syscall:::entry
{
	@num[execname] = count();
}

dtrace:::END
{
	printf("%-32s %10s\n", "PROCESS", "CALLS");
	printa("%-32s %@10d\n", @num);
}
