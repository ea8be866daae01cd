/* Predicates: division inside them, nested parentheses, string comparisons. */
syscall::read:entry
/pid == 100 && arg2 / 2 > 10/
{
    self->n = arg2;
}

syscall::read:return
/self->n && (execname == "bash" || execname != "zsh") && (arg0 / 4) >= 1/
{
    self->n = 0;
}

syscall::write:entry
/execname < "m"/
{ }
