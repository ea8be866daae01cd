#!/usr/sbin/dtrace -s
/* rwbytes.d: bytes read and written by process, every interval of $1 seconds. */
#pragma D option quiet

inline int INTERVAL = $1;

syscall::read:return,
syscall::write:return
/(int)arg0 > 0/
{
	@bytes[pid, execname, probefunc == "read" ? "R" : "W"] = sum(arg0);
}

tick-1s
{
	secs++;
}

tick-1s
/secs >= INTERVAL/
{
	printf("%6s %-16s %3s %10s\n", "PID", "CMD", "D", "BYTES");
	printa("%6d %-16s %3s %@10d\n", @bytes);
	trunc(@bytes);
	secs = 0;
}
