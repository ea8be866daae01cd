syscall::read:entry
{
    @n = count();
    x = @n * 2;
}
