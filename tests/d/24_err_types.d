BEGIN
{
    x = execname;
    x = 1;
    y = execname * 2;
    z = pid == "one";
    if (execname) { trace(1); }
}
