#!/usr/sbin/dtrace -s
/* cpuwalk.d: which CPUs a process runs on. */
#pragma D option quiet

profile-1000
/pid == $target/
{
	@sample[pid, execname] = lquantize(cpu, 0, 64, 1);
}

tick-10s
{
	exit(0);
}

END
{
	printa("\n     PID: %-8d CMD: %s\n%@d", @sample);
}
