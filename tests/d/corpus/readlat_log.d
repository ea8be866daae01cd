/* readlat_log.d: read(2) latency, log-linear in nanoseconds. */
syscall::read:entry
{
	self->start = timestamp;
}

syscall::read:return
/self->start/
{
	@lat[execname] = llquantize(timestamp - self->start, 10, 3, 9, 10);
	self->start = 0;
}
