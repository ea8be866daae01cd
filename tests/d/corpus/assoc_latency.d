/* assoc_latency.d: open latency kept in a global associative array keyed by thread. */
#pragma D option quiet

uint64_t start[int];

syscall::openat:entry
{
	start[tid] = timestamp;
}

syscall::openat:return
/start[tid]/
{
	@lat[execname] = avg(timestamp - start[tid]);
	start[tid] = 0;
}
