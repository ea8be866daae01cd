/* Clauses DTrace accepts: data after speculate(), several commits and discards. */
#pragma D option nspec=4
#pragma D option specsize=1k
BEGIN { s = speculation(); t = speculation(); }
BEGIN { speculate(s); printf("%d\n", s); trace(t); }
BEGIN { discard(t); commit(s); commit(t); }
