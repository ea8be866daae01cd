#!/usr/sbin/dtrace -s
/* malloc_sizes.d: malloc() request sizes in $target, with the calling stacks. */
#pragma D option quiet

pid$target::malloc:entry
{
	@sizes = quantize(arg0);
	@stacks[ustack(5)] = sum(arg0);
}

pid$target::free:entry
/arg0 == 0/
{
	@nullfree = count();
}
