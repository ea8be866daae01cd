/* Arithmetic and bitwise operators with C's precedence and left associativity. */
BEGIN
{
    a = pid + tid * 2 - 3;
    b = pid - tid - 1;
    c = (pid + tid) * 2 / 3 % 4;
    d = pid << 2 >> 1;
    e = pid & 0xff | tid ^ 0x0f;
    f = ~pid + -tid + +cpu;
    g = timestamp - vtimestamp;
    h = arg0 * 8;
    trace(a + b + c + d + e + f + g + h);
}
