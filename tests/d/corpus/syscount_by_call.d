/* syscount_by_call.d: system calls by name, top ten every five seconds. */
#pragma D option quiet

syscall:::entry
{
	@calls[probefunc] = count();
}

tick-5s
{
	trunc(@calls, 10);
	printf("%Y\n", walltimestamp);
	printa("  %-24s %@8d\n", @calls);
	trunc(@calls);
}
