/* writesize_lin.d: write(2) request sizes, linear buckets of 512 bytes up to 16K. */
syscall::write:entry
{
	@req[execname] = lquantize(arg2, 0, 16384, 512);
}
