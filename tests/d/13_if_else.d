/* if/else (D 2.x): blocks, single statements, else if, nesting. */
syscall::read:return
{
    if (arg0 < 0) {
        @errors[errno] = count();
    } else if (arg0 == 0) {
        @eof = count();
    } else
        @bytes = sum(arg0);

    if (execname == "bash")
        trace(pid);

    if (pid > 1) {
        if (tid > 1) {
            x = 1;
        }
    } else {
        x = 2;
    }
}
