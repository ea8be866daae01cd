/* Actions: trace, printf, printa (plain and with a format), exit, clear, trunc,
 * normalize, denormalize. */
syscall::write:entry
{
    @w[execname] = count();
    @s[execname, pid] = sum(arg2);
    trace(execname);
    trace(arg2);
    printf("%-16s %5d %*d %.3s %p %c %x %o %u %i %S %a %Y\n", execname, pid, 8, tid,
        probefunc, arg1, 'x', arg2, arg2, arg2, arg2, execname, arg0, walltimestamp);
}

tick-5s
{
    printa(@w);
    printa("%-16s %@d\n", @w);
    printa("%s %d %@8u\n", @s);
    printa(@w, @s);
    normalize(@s, 1024);
    denormalize(@s);
    trunc(@w, 5);
    trunc(@s);
    clear(@w);
    printf("%k\n", stack());
}

END
{
    exit(0);
}
