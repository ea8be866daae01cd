syscall::read:entry
/pdi == 1/
{
    trace(exename);
}
