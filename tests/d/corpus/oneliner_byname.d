/* One-liner: system calls of processes named $$2, by call. */
syscall:::entry /execname == $$2/ { @[probefunc] = count(); }
