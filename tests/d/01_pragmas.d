#!/usr/sbin/dtrace -s
/*
 * Pragmas, comments and the interpreter line.
 */
#pragma D option quiet
#pragma D option bufsize=16m
#pragma D option switchrate=10hz
#pragma D option defaultargs
#pragma ident "ignored, as D ignores pragmas it does not know"
// a line comment

BEGIN /* inline comment */ { exit(0); }
