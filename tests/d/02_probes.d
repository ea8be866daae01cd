/* Probe descriptions: four parts, empty parts, globs, short forms, lists, macros. */
syscall::read:entry { }
syscall:::entry { }
:::BEGIN { }
BEGIN { }
END { }
tick-1s { }
profile-997 { }
profile:::tick-10ms { }
syscall::open*:entry, syscall::openat?:return,
syscall::[rw]ead:entry { }
fbt:kernel:*[!a-c]alloc*:entry { }
python$target:::function-entry { }
pid$target:a.out:main:entry { }
syscall::$2:entry { }
read:entry { }
