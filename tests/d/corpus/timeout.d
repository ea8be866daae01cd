/* timeout.d: stop after $1 ticks of one second, counting opens meanwhile. */
#pragma D option quiet

syscall::openat:entry
{
	@opens = count();
}

tick-1s
/++ticks >= $1/
{
	printa("opens: %@d\n", @opens);
	exit(0);
}
