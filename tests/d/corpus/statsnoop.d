/* statsnoop.d: files stat()ed, with the result. */
#pragma D option quiet

syscall::newfstatat:entry,
syscall::statx:entry
{
	self->path = copyinstr(arg1);
	self->active = 1;
}

syscall::newfstatat:return,
syscall::statx:return
/self->active/
{
	printf("%6d %-16s %3d %s\n", pid, execname, (int)arg0 < 0 ? errno : 0, self->path);
	self->active = 0;
}
