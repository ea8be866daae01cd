/* Constant folding after inline substitution. */
inline int FILTER_PID = 0;
inline string FILTER_NAME = "";
inline int ON = 1;
inline int SHIFTED = 1 << 4 | 3;

syscall:::entry
/(FILTER_PID == 0 || pid == FILTER_PID) && (FILTER_NAME == "" || execname == FILTER_NAME)/
{
    @[ON ? probefunc : "other"] = count();
    a = -5 / 2;
    b = -5 % 3;
    c = (unsigned int)-1 + 1;
    d = "abc" < "abd";
    e = 0 && pid;
    f = ON || pid;
    g = !0 ^^ 1;
    h = SHIFTED * 2;
    i = ~0;
    j = (char)255;
    trace(a + b + c + d + e + f + g + h + i + j);
}
