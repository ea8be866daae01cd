/* threads.d: system calls per thread of $target, with this-> scratch variables. */
#pragma D option quiet

this int calls;

syscall:::entry
/pid == $target/
{
	this->calls = 1;
	@per_thread[tid] = sum(this->calls);
}

END
{
	printa("tid %-8d %@d\n", @per_thread);
}
