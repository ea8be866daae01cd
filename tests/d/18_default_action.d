/* Clauses without a body take D's default action. */
syscall::read:entry
syscall::write:entry /pid == 1/
