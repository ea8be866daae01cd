#!/usr/sbin/dtrace -s
/* py_calls.d: Python function calls by file and function, for $target. */
#pragma D option quiet

python$target:::function-entry
{
	@calls[basename(copyinstr(arg0)), copyinstr(arg1)] = count();
}

dtrace:::END
{
	printf(" %-32s %-32s %8s\n", "FILE", "FUNC", "CALLS");
	printa(" %-32s %-32s %@8d\n", @calls);
}
