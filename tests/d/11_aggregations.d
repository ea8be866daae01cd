/* Every aggregating function, keyed and unkeyed. */
syscall::read:return
{
    @calls = count();
    @[execname] = count();
    @bytes[execname, pid] = sum(arg0);
    @lo[probefunc] = min(arg0);
    @hi[probefunc] = max(arg0);
    @mean = avg(arg0);
    @sd = stddev(arg0);
    @dist = quantize(arg0);
    @lin[execname] = lquantize(arg0, 0, 1000, 10);
    @lin2 = lquantize(arg0, -10, 10);
    @log = llquantize(arg0, 10, 0, 6, 20);
    @stacks[stack()] = count();
    @ustacks[ustack(10), execname] = count();
}
