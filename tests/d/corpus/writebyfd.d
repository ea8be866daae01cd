/* writebyfd.d: write sizes per file descriptor for one command. */
syscall::write:entry
/execname == $$2/
{
	@sizes[(int)arg0] = quantize(arg2);
}
