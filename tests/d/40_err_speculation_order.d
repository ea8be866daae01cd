/* The order of actions around speculate() and commit(), as DTrace enforces it. */
BEGIN { s = speculation(); }
BEGIN { printf("data"); speculate(s); }
BEGIN { speculate(s); speculate(s); }
BEGIN { commit(s); speculate(s); }
BEGIN { speculate(s); @a = count(); }
BEGIN { commit(s); @b = count(); }
BEGIN { trace(1); commit(s); }
BEGIN { commit(s); trace(1); }
BEGIN { speculate(s); exit(0); }
BEGIN { speculate(s); raise(9); }
BEGIN { discard(s); commit(s); commit(s); printf("no data before commit"); }
BEGIN { speculate(); }
BEGIN { raise("9"); }
