/* A declared string that nothing assigns is always empty. */
string label;

syscall::read:entry
/label == ""/
{
    @[execname] = count();
}
