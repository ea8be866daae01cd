/* creatbyproc.d: files created with creat(2) or O_CREAT. */
#pragma D option quiet

syscall::creat:entry
{
	printf("%s %s\n", execname, copyinstr(arg0));
}

syscall::openat:entry
/arg2 & 0x40/
{
	printf("%s %s\n", execname, copyinstr(arg1));
}
