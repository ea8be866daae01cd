/* iotop_lite.d: bytes read and written per process, in kilobytes, every five seconds. */
#pragma D option quiet

syscall::read:return,
syscall::write:return
/(int)arg0 > 0/
{
	@kb[pid, execname] = sum(arg0);
}

tick-5s
{
	normalize(@kb, 1024);
	trunc(@kb, 15);
	printf("%6s %-16s %8s\n", "PID", "COMM", "KB");
	printa("%6d %-16s %@8d\n", @kb);
	denormalize(@kb);
	trunc(@kb);
}
