#!/usr/sbin/dtrace -s
/* py_flowtime.d: Python call flow with indentation and the time between events. */
#pragma D option quiet
#pragma D option switchrate=10hz

self int depth;

dtrace:::BEGIN
{
	printf("%3s %-20s %10s -- %s\n", "C", "FILE", "DELTA(us)", "FUNC");
}

python$target:::function-entry,
python$target:::function-return
/self->last == 0/
{
	self->last = timestamp;
}

python$target:::function-entry
{
	this->delta = (timestamp - self->last) / 1000;
	printf("%3d %-20s %10d %*s-> %s\n", cpu, basename(copyinstr(arg0)), this->delta,
	    self->depth * 2, "", copyinstr(arg1));
	self->depth++;
	self->last = timestamp;
}

python$target:::function-return
{
	this->delta = (timestamp - self->last) / 1000;
	self->depth -= self->depth > 0 ? 1 : 0;
	printf("%3d %-20s %10d %*s<- %s\n", cpu, basename(copyinstr(arg0)), this->delta,
	    self->depth * 2, "", copyinstr(arg1));
	self->last = timestamp;
}
