/* labels.d: builds labels with string functions and counts them. */
#pragma D option quiet

syscall::openat:entry
{
	this->label = strjoin(strjoin(toupper(execname), ":"), lltostr(pid));
	this->lower = tolower(this->label);
	@labels[this->label, this->lower] = count();
	@lens[strlen(this->label)] = count();
}
