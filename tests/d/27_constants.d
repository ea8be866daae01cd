/* Predefined constants: NULL, errno values, signals and open flags. */
syscall::openat:entry
/arg1 != NULL && (arg2 & O_CREAT) && !(arg2 & (O_EXCL | O_TRUNC))/
{
    @creates[execname] = count();
}

syscall::openat:return
/errno == ENOENT || errno == EACCES/
{
    @missing[execname, errno == ENOENT ? "ENOENT" : "EACCES"] = count();
}

syscall::kill:entry
/arg1 == SIGKILL || arg1 == SIGTERM/
{
    @kills[execname, arg1] = count();
}
