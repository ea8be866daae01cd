#!/usr/sbin/dtrace -s
/* rwsnoop.d: reads and writes as they happen, with fd and size. */
#pragma D option quiet

syscall::read:entry,
syscall::write:entry
{
	self->fd = arg0;
	self->ok = 1;
}

syscall::read:return,
syscall::write:return
/self->ok/
{
	printf("%5d %6d %-12s %1s %4d %7d\n", uid, pid, execname,
	    probefunc == "read" ? "R" : "W", self->fd, (int)arg0);
	self->ok = 0;
	self->fd = 0;
}
