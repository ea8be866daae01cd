/* Member access, indexing, args[], curpsinfo, associative arrays with two keys. */
syscall::openat:entry
{
    self->p = curpsinfo->pr_pid;
    self->ppid = curpsinfo->pr_ppid;
    this->args = curpsinfo->pr_psargs;
    this->fname = curpsinfo->pr_fname;
    self->a0 = args[0];
    self->file = args[1]->fi_pathname;
    self->flags = curthread->flags;
    counts[pid, probefunc] = counts[pid, probefunc] + 1;
    trace(this->args);
    trace(this->fname);
}
