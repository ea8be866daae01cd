syscall::read:entry
{
    @q = quantize();
    @l = lquantize(arg0, 0);
    trace(substr(execname));
    trace(copyinstr());
    exit("now");
}
