#!/usr/sbin/dtrace -s
/* py_cputime.d: on-CPU time in each Python function, inclusive, with a histogram. */
#pragma D option quiet

python$target:::function-entry
{
	self->vts[copyinstr(arg1)] = vtimestamp;
}

python$target:::function-return
/self->vts[copyinstr(arg1)]/
{
	this->name = copyinstr(arg1);
	this->oncpu = vtimestamp - self->vts[this->name];
	@cpu[this->name] = sum(this->oncpu / 1000);
	@dist[this->name] = quantize(this->oncpu / 1000);
	self->vts[this->name] = 0;
}

END
{
	printa("%-32s %@10d us\n", @cpu);
	printa(@dist);
}
