/* connect.d: outbound connections by process and result. */
#pragma D option quiet

syscall::connect:entry
{
	self->fd = (int)arg0;
	self->pending = 1;
}

syscall::connect:return
/self->pending/
{
	@conns[execname, (int)arg0 == 0 ? "ok" : (errno == 115 ? "in progress" : "failed")] =
	    count();
	self->pending = 0;
}
