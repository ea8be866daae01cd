/* Assigning zero frees a thread-local or an associative element, whatever its type. */
syscall::openat:entry
{
    self->path = copyinstr(arg1);
    names[tid] = execname;
}

syscall::openat:return
/self->path != ""/
{
    printf("%s %s\n", names[tid], self->path);
    self->path = 0;
    names[tid] = 0;
}
