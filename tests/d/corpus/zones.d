/* zones.d: system calls by zone (on Linux, by cgroup). */
syscall:::entry
{
	@[zonename, execname] = count();
}
