/* A variable read in a clause before the one that assigns it gets the type that
 * assignment gives it. */
syscall::openat:return
/self->path != ""/
{
    printf("%s %d\n", self->path, times[self->path]);
    self->path = 0;
}

syscall::openat:entry
{
    self->path = copyinstr(arg1);
    times[self->path] = timestamp;
}
