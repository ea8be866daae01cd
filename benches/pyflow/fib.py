"""A call-heavy workload for benches/pyflow.rs: fib(N), timed from inside, the time written
to the file named by the first argument (so that the tracer's startup is not counted)."""

import sys
import time


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


start = time.perf_counter()
fib(int(sys.argv[2]))
with open(sys.argv[1], "w") as out:
    out.write(str(time.perf_counter() - start))
