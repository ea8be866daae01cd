/* pathparts.d: opened files by directory and base name. */
#pragma D option quiet

syscall::openat:entry
{
	this->path = copyinstr(arg1);
	@dirs[dirname(this->path)] = count();
	@bases[basename(this->path)] = count();
}

END
{
	printa("dir  %-40s %@6d\n", @dirs);
	printa("base %-40s %@6d\n", @bases);
}
