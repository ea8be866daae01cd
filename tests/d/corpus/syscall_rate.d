#!/usr/sbin/dtrace -s
/* syscall_rate.d: system calls per second, with the time of day. */
#pragma D option quiet

syscall:::entry
{
	@rate = count();
}

tick-1s
{
	printf("%Y ", walltimestamp);
	printa("%@d calls/s\n", @rate);
	clear(@rate);
}
