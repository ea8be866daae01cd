/* progeny.d: system calls made by $target and all its descendants. */
syscall:::entry
/progenyof($target)/
{
	@[pid, execname] = count();
}
