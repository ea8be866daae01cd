/* Macros: $target, $1 as an integer, $2 as an identifier (a probe function here),
 * $$1 and $$3 as strings. */
syscall::$2:entry
/pid == $target && arg2 > $1/
{
    printf("%s %s %d\n", $$1, $$3, $1 + 1);
}
