#!/usr/sbin/dtrace -s
/*
 * procsystime.d: elapsed and on-CPU time in each system call, for one process ($target)
 * or by name ($$2), with counts.
 */
#pragma D option quiet

syscall:::entry
/pid == $target || execname == $$2/
{
	self->start = timestamp;
	self->vstart = vtimestamp;
}

syscall:::return
/self->start/
{
	this->elapsed = timestamp - self->start;
	this->oncpu = vtimestamp - self->vstart;
	@elapsed[probefunc] = sum(this->elapsed);
	@cpu[probefunc] = sum(this->oncpu);
	@calls[probefunc] = count();
	self->start = 0;
	self->vstart = 0;
}

dtrace:::END
{
	normalize(@elapsed, 1000);
	normalize(@cpu, 1000);
	printf("\nElapsed times (us):\n");
	printa("%20s %@12d\n", @elapsed);
	printf("\nCPU times (us):\n");
	printa("%20s %@12d\n", @cpu);
	printf("\nSyscall counts:\n");
	printa("%20s %@12d\n", @calls);
}
