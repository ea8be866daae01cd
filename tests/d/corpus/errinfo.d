#!/usr/sbin/dtrace -s
/* errinfo.d: system calls that fail, with errno, live and as a summary. */
#pragma D option quiet

BEGIN
{
	printf("%16s %6s %16s %4s\n", "EXEC", "PID", "SYSCALL", "ERR");
}

syscall:::return
/errno != 0 && (int)arg0 < 0/
{
	printf("%16s %6d %16s %4d\n", execname, pid, probefunc, errno);
	@errs[execname, probefunc, errno] = count();
}

END
{
	printf("\n%16s %16s %4s %8s\n", "EXEC", "SYSCALL", "ERR", "COUNT");
	printa("%16s %16s %4d %@8d\n", @errs);
}
