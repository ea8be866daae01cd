/* One-liner: process exits by name and exit code. */
proc:::exit { @[execname, args[0]] = count(); }
