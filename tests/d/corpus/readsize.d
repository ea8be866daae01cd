#!/usr/sbin/dtrace -s
/* readsize.d: distribution of read(2) sizes that succeeded, by process. */

syscall::read:return
/(int)arg0 > 0/
{
	@size[execname] = quantize(arg0);
}
