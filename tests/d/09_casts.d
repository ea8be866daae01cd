/* Casts to D types, sizeof of types and expressions, stringof. */
BEGIN
{
    a = (int)arg0;
    b = (unsigned char)300;
    c = (int8_t)-1;
    d = (uint64_t)(int)-1;
    e = (long long)pid;
    f = (signed short)70000;
    g = (char *)arg1;
    h = (struct file *)arg2;
    i = sizeof (int);
    j = sizeof (uint16_t);
    k = sizeof (char *);
    l = sizeof pid;
    m = sizeof (timestamp);
    s = stringof(pid);
    t = stringof execname;
    u = (size_t)(ssize_t)(uintptr_t)arg0;
    trace(a + b + c + d + e + f + i + j + k + l + m + u);
    trace(s);
    trace(t);
}
