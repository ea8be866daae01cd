/* readstats.d: count, average, min, max and stddev of read sizes. */
#pragma D option quiet

syscall::read:return
/(int)arg0 >= 0/
{
	@n[execname] = count();
	@avg[execname] = avg(arg0);
	@min[execname] = min(arg0);
	@max[execname] = max(arg0);
	@sd[execname] = stddev(arg0);
}

END
{
	printa("%-16s %@8d", @n);
	printa(" avg %@8d", @avg);
	printa(" min %@8d", @min);
	printa(" max %@8d", @max);
	printa(" sd %@8d\n", @sd);
}
