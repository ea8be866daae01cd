/* forks.d: fork/clone rate by parent process, each second. */
#pragma D option quiet

syscall::clone:return,
syscall::clone3:return,
syscall::vfork:return
/(int)arg0 > 0/
{
	@forks[execname, pid] = count();
}

tick-1s
{
	printa("%-16s %6d %@4d\n", @forks);
	trunc(@forks);
}
