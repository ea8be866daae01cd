/* One-liner style: the last statement before `}` needs no `;`. */
syscall:::entry { @[execname] = count() }
syscall::read:entry /pid == 1/ { trace(arg0); trace(arg1) }
