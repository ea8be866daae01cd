#!/usr/sbin/dtrace -s
/* py_syscalls.d: system calls made while inside each Python function. */
#pragma D option quiet

python$target:::function-entry
{
	self->func = copyinstr(arg1);
	self->infunc = 1;
}

python$target:::function-return
{
	self->infunc = 0;
}

syscall:::entry
/pid == $target && self->infunc/
{
	@[self->func, probefunc] = count();
}
