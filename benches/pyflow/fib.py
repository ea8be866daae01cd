"""A call-heavy workload for benches/pyflow.rs: fib(N), timed from inside, the time written
to the file named by the first argument (so that the tracer's startup is not counted).

The time is the process's CPU time (user and system): a uprobe's trap and the BPF program it
runs are charged to the traced thread, while time spent waiting for a CPU that other work
holds is not, so the figure stays meaningful on a loaded machine."""

import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


start = time.process_time()
fib(int(sys.argv[2]))
with open(sys.argv[1], "w") as out:
    out.write(str(time.process_time() - start))
