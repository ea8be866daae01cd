syscall::openat:entry
{
    printf("%s opened %d\n", pid, copyinstr(arg1));
}
