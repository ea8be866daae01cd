/* Logical operators (with D's ^^), comparisons, and right-associative ?:. */
BEGIN
{
    a = pid > 1 && tid < 2 || cpu == 0;
    b = pid >= 1 ^^ tid <= 2;
    c = !pid || pid != 3;
    d = pid > 10 ? 1 : pid > 5 ? 2 : 3;
    s = execname == "bash" ? "shell" : execname;
    t = probefunc >= "read" && probefunc <= "write";
    trace(a + b + c + d + t);
    trace(s);
}
