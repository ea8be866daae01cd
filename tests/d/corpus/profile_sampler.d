#!/usr/sbin/dtrace -s
/* profile_sampler.d: user stacks of $target sampled at 997 Hz, for a flame graph. */
#pragma D option quiet
#pragma D option ustackframes=100

profile-997
/pid == $target && arg1/
{
	@[ustack()] = count();
}

tick-30s
{
	exit(0);
}
