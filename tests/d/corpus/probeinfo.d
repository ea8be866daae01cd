/* probeinfo.d: the probe names that fire, with their ids. */
#pragma D option quiet

syscall::read*:entry,
syscall::write*:entry
{
	@[probeprov, probemod, probefunc, probename] = count();
	@ids[id, epid] = count();
}
