"""Like loop.py, and also writes each script that sys.remote_exec runs in this process (the
audit event cpython.remote_debugger_script, CPython 3.14) to the file named by argv[1]."""

import sys
import time

log = open(sys.argv[1], "a", buffering=1)


def audit(event, args):
    if event == "cpython.remote_debugger_script":
        log.write(f"{args[0]}\n")


sys.addaudithook(audit)


def tick(n):
    return n + 1


def main():
    print("ready", flush=True)
    n = 0
    while True:
        n = tick(n)
        time.sleep(0.005)


main()
