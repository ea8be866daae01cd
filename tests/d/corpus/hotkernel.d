/* hotkernel.d: sampled kernel program counters, most frequent last. */
#pragma D option quiet

profile-1001
/arg0/
{
	@pc[arg0] = count();
	@frames[stack(1)] = count();
}

END
{
	trunc(@pc, 20);
	printa("%a %@d\n", @pc);
}
