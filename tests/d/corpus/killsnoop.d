#!/usr/sbin/dtrace -s
/* killsnoop.d: signals sent with kill(2), and whether they worked. */
#pragma D option quiet

syscall::kill:entry
{
	self->target = (int)arg0;
	self->signal = (int)arg1;
}

syscall::kill:return
/self->signal/
{
	printf("%-6d %-12s %6d %6d %4d\n", pid, execname, self->signal, self->target,
	    (int)arg0);
	self->signal = 0;
	self->target = 0;
}
