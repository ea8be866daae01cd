#!/usr/sbin/dtrace -s
/* dtruss_lite.d: system calls of $target with three arguments and the result. */
#pragma D option quiet

syscall:::entry
/pid == $target/
{
	self->a0 = arg0;
	self->a1 = arg1;
	self->a2 = arg2;
	self->in = 1;
}

syscall:::return
/pid == $target && self->in/
{
	printf("%s(0x%x, 0x%x, 0x%x) = %d %s\n", probefunc, self->a0, self->a1, self->a2,
	    (int)arg0, (int)arg0 < 0 ? lltostr(errno) : "");
	self->in = 0;
}
