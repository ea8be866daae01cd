/* String, character and integer constants: escapes, suffixes, bases. */
BEGIN
{
    printf("tab\there \"quoted\" back\\slash \x41\102 bell\a%%\n");
    a = 'a';
    b = '\n';
    c = '\0';
    d = '\'';
    e = 10;
    f = 0x1F;
    g = 017;
    h = 10u;
    i = 10l;
    j = 10ul;
    k = 10ll;
    l = 10ULL;
    m = 2147483648;
    n = 0xffffffff;
    o = 0xffffffffffffffff;
    trace(a + b + c + d + e + f + g + h + i + j + k + l + m + n + o);
}
