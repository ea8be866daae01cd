#!/usr/sbin/dtrace -s
/* filebyproc.d: files opened, by process name. */
#pragma D option quiet

syscall::openat:entry
{
	@files[execname, copyinstr(arg1)] = count();
}

dtrace:::END
{
	printa("%-16s %-48s %@5d\n", @files);
}
