/* mmapsize.d: sizes of mappings made by mmap(2). */
syscall::mmap:entry
{
	@size[execname] = quantize(arg1);
	@total[execname] = sum(arg1);
}
