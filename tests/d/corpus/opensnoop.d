#!/usr/sbin/dtrace -s
/*
 * opensnoop.d: every open(2)/openat(2), with the process, the result and the path.
 */
#pragma D option quiet
#pragma D option switchrate=10hz

dtrace:::BEGIN
{
	printf("%5s %6s %-16s %4s %3s %s\n", "UID", "PID", "COMM", "FD", "ERR", "PATH");
}

syscall::open:entry
{
	self->pathp = arg0;
}

syscall::openat:entry
{
	self->pathp = arg1;
}

syscall::open:return,
syscall::openat:return
/self->pathp/
{
	this->fd = (int)arg0;
	this->err = this->fd < 0 ? errno : 0;
	printf("%5d %6d %-16s %4d %3d %s\n", uid, pid, execname, this->fd, this->err,
	    copyinstr(self->pathp));
	self->pathp = 0;
}
