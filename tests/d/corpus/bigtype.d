/* bigtype.d: explicitly typed globals and threads, with an inline threshold. */
#pragma D option quiet

inline int THRESHOLD_US = 100;
uint64_t slow_calls;
self uint64_t start;

syscall::fsync:entry,
syscall::fdatasync:entry
{
	self->start = timestamp;
}

syscall::fsync:return,
syscall::fdatasync:return
/self->start && (timestamp - self->start) / 1000 > THRESHOLD_US/
{
	slow_calls++;
	printf("%s %s took %d us (%d slow so far)\n", execname, probefunc,
	    (timestamp - self->start) / 1000, slow_calls);
}

syscall::fsync:return,
syscall::fdatasync:return
{
	self->start = 0;
}
