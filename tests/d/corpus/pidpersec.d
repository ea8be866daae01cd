#!/usr/sbin/dtrace -s
/* pidpersec.d: processes created per second. */
#pragma D option quiet

BEGIN
{
	printf("%-22s %8s\n", "TIME", "NEW/s");
}

proc:::exec-success
{
	@new = count();
}

tick-1s
{
	printf("%-22Y ", walltimestamp);
	printa("%@8d\n", @new);
	clear(@new);
}
