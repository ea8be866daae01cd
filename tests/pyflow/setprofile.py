"""Ground truth for dtk's pyflow tests.

Runs PROGRAM under sys.setprofile and threading.setprofile, and writes to OUT, as JSON lines,
each 'call' and 'return' event (not c_call) of a frame that pyflow shows by default: frames of
the standard library, of installed packages and of frozen or builtin modules are left out, as
Python itself places them (sysconfig), and so is this file. Each event carries its thread's
depth, counted in shown frames only, as pyflow counts it.

    python setprofile.py OUT PROGRAM
"""

import json
import os
import runpy
import sys
import sysconfig
import threading

LIBRARY = sorted(
    {os.path.realpath(p) for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib")}
)
HERE = os.path.realpath(__file__)
events = []
stacks = {}


def shown(filename):
    if filename.startswith("<") or "/site-packages/" in filename or "/dist-packages/" in filename:
        return False
    real = os.path.realpath(filename)
    return real != HERE and not any(real.startswith(lib + os.sep) for lib in LIBRARY)


def profile(frame, event, arg):
    if event not in ("call", "return"):
        return
    stack = stacks.setdefault(threading.get_native_id(), [])
    code = frame.f_code
    if event == "call":
        visible = shown(code.co_filename)
        depth = stack.count(True)
        stack.append(visible)
        line = code.co_firstlineno
    elif stack:
        visible = stack.pop()
        depth = stack.count(True)
        line = frame.f_lineno
    else:
        return
    if visible:
        events.append(
            {
                "tid": threading.get_native_id(),
                "kind": "entry" if event == "call" else "return",
                "file": code.co_filename,
                "function": code.co_name,
                "line": line,
                "depth": depth,
            }
        )


def main():
    out, program = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        runpy.run_path(program, run_name="__main__")
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
        with open(out, "w") as f:
            for e in events:
                f.write(json.dumps(e) + "\n")


main()
