/* newproc.d: print each new process's arguments. */
#pragma D option quiet

proc:::exec-success
{
	trace(curpsinfo->pr_psargs);
	printf("\n");
}
