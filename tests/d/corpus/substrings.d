/* substrings.d: opens under /usr/lib and /etc, classified with strstr and index. */
#pragma D option quiet

syscall::openat:entry
{
	self->p = copyinstr(arg1);
}

syscall::openat:return
/self->p != ""/
{
	this->lib = strstr(self->p, "/usr/lib") != "" ? 1 : 0;
	this->etc = index(self->p, "/etc/") == 0;
	this->ext = rindex(self->p, ".");
	@kinds[this->lib ? "lib" : this->etc ? "etc" : "other",
	    this->ext >= 0 ? substr(self->p, this->ext) : ""] = count();
	self->p = 0;
}
