/* ptrsize.d: casts, sizeof and stringof in use. */
#pragma D option quiet

BEGIN
{
	printf("pointer %d int %d long %d\n", sizeof (char *), sizeof (int), sizeof (long));
	printf("pid as string: %s\n", stringof(pid));
	exit(0);
}
