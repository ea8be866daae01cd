#!/usr/sbin/dtrace -s
/* tick_sampler.d: which processes are on CPU, sampled at 100 Hz, printed each second. */
#pragma D option quiet

profile-100
/pid != 0/
{
	@oncpu[execname] = count();
}

tick-1s
{
	printf("%Y\n", walltimestamp);
	printa("  %-20s %@6d\n", @oncpu);
	clear(@oncpu);
}
