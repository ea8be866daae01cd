"""Ground truth for dtk's pyflow tests.

Runs PROGRAM under sys.setprofile and threading.setprofile, and writes to OUT, as JSON lines,
each 'call' and 'return' event (not c_call) of a frame that pyflow shows by default: frames of
the standard library, of installed packages and of frozen or builtin modules are left out, as
Python itself places them (sysconfig), and so is this file. Each event carries its thread's
depth, counted in shown frames only, as pyflow counts it.

A generator's (or coroutine's) 'return' by yield or await is a "yield", and its next 'call'
is then a "resume". sys.setprofile does not say which returns are yields: on 3.12 and later,
sys.monitoring reports the same events as PY_YIELD and PY_RETURN (and PY_RESUME, PY_THROW),
in the same order, so the events are paired one to one; before 3.12, a yield's return is at
its YIELD_VALUE (or YIELD_FROM) instruction, and its frame runs again later (a generator
still suspended when the program ends would count as returned).

Code compiled from a string (`<string>`, `<stdin>`) is shown where shown code or no code
calls it (this file's frames count as none): `python -c` code is the user's, and so is a
dataclass's generated __init__ that the user's code calls, but not the code the standard library
compiles and runs itself. With -c, CODE runs as `python -c CODE` would run it.

When the program replaces itself (os.exec*), the events so far are written before it does.

    python setprofile.py OUT PROGRAM
    python setprofile.py OUT -c CODE
"""

import dis
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
YIELDS = {dis.opmap[name] for name in ("YIELD_VALUE", "YIELD_FROM") if name in dis.opmap}
YIELD_FROM = dis.opmap.get("YIELD_FROM", -1)
# CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
GENERATOR_FLAGS = 0x20 | 0x80 | 0x200
# Per thread: every 'call' and 'return', shown or not, as (frame, kind as far as known now).
sequences = {}
# Per thread, on 3.12+: what sys.monitoring reported, as (kind, function).
monitored = {}
MONITORING = sys.version_info >= (3, 12)


def kind_now(frame, event):
    """The kind, as much as can be told while the event happens (before 3.12)."""
    if event == "call":
        return "entry"
    code = frame.f_code
    lasti = frame.f_lasti
    if not code.co_flags & GENERATOR_FLAGS or lasti < 0:
        return "return"
    # 3.9's YIELD_FROM steps f_lasti back by one instruction, to run again on resume.
    after = code.co_code[lasti + 2 : lasti + 3]
    at_yield = code.co_code[lasti] in YIELDS or (YIELD_FROM >= 0 and after == bytes([YIELD_FROM]))
    return "yield" if at_yield else "return"


def monitor():
    tool = sys.monitoring.PROFILER_ID
    events = sys.monitoring.events
    kinds = {
        events.PY_START: "entry",
        events.PY_RESUME: "entry",
        events.PY_THROW: "entry",
        events.PY_RETURN: "return",
        events.PY_YIELD: "yield",
        events.PY_UNWIND: "return",
    }
    sys.monitoring.use_tool_id(tool, "pyflow ground truth")
    for event, kind in kinds.items():

        def report(code, offset, *rest, kind=kind):
            # Only what the thread's sys.setprofile sees too (a new thread sets it in its
            # bootstrap).
            if sys.getprofile() is profile:
                monitored.setdefault(threading.get_native_id(), []).append((kind, code.co_name))

        sys.monitoring.register_callback(tool, event, report)
    all_events = 0
    for event in kinds:
        all_events |= event
    sys.monitoring.set_events(tool, all_events)


def final_kinds(tid):
    """Each event's kind: a generator frame's entry after its yield is a resume."""
    sequence = sequences.get(tid, [])
    if MONITORING:
        reported = monitored.get(tid, [])
        if len(reported) < len(sequence):
            raise SystemExit(f"thread {tid}: sys.monitoring reported {len(reported)} events, sys.setprofile {len(sequence)}")
        for (frame, _), (kind, name) in zip(sequence, reported):
            if frame.f_code.co_name != name:
                raise SystemExit(f"thread {tid}: sys.monitoring reported {name}, sys.setprofile {frame.f_code.co_name}")
        sequence = [(frame, kind) for (frame, _), (kind, _) in zip(sequence, reported)]
    else:
        # An exception raised at a yield (throw()) leaves its frame there too: a return at a
        # yield is a yield only if the frame runs again.
        entered_later = set()
        for n in reversed(range(len(sequence))):
            frame, kind = sequence[n]
            if kind == "yield" and id(frame) not in entered_later:
                sequence[n] = (frame, "return")
            if kind == "entry":
                entered_later.add(id(frame))
    suspended = set()
    kinds = []
    for frame, kind in sequence:
        if kind == "entry" and id(frame) in suspended:
            kind = "resume"
        if kind == "yield":
            suspended.add(id(frame))
        else:
            suspended.discard(id(frame))
        kinds.append(kind)
    return kinds


def shown(filename, stack):
    if filename in ("<string>", "<stdin>"):
        return not stack or stack[-1] is not False
    if filename.startswith("<") or "/site-packages/" in filename or "/dist-packages/" in filename:
        return False
    real = os.path.realpath(filename)
    return real != HERE and not any(real.startswith(lib + os.sep) for lib in LIBRARY)


def profile(frame, event, arg):
    if event not in ("call", "return"):
        return
    tid = threading.get_native_id()
    stack = stacks.setdefault(tid, [])
    code = frame.f_code
    sequence = sequences.setdefault(tid, [])
    sequence.append((frame, kind_now(frame, event)))
    if event == "call":
        visible = shown(code.co_filename, stack)
        depth = stack.count(True)
        # This file's frames are no caller, for code compiled from a string.
        stack.append(None if os.path.realpath(code.co_filename) == HERE else visible)
        line = code.co_firstlineno
    elif stack:
        visible = stack.pop() is True
        depth = stack.count(True)
        line = frame.f_lineno
    else:
        return
    if visible:
        events.append(
            {
                "tid": threading.get_native_id(),
                "at": len(sequence) - 1,
                "file": code.co_filename,
                "function": code.co_name,
                "line": line,
                "depth": depth,
            }
        )


def write(out):
    sys.setprofile(None)
    threading.setprofile(None)
    if MONITORING:
        sys.monitoring.set_events(sys.monitoring.PROFILER_ID, 0)
    kinds = {tid: final_kinds(tid) for tid in sequences}
    with open(out, "w") as f:
        for e in events:
            e["kind"] = kinds[e["tid"]][e.pop("at")]
            f.write(json.dumps(e) + "\n")


def main():
    out, program = sys.argv[1], sys.argv[2]
    if program == "-c":
        code = compile(sys.argv[3], "<string>", "exec")
        sys.argv = ["-c"] + sys.argv[4:]
    else:
        sys.argv = sys.argv[2:]

    def before_exec(event, args):
        if event == "os.exec":
            write(out)

    sys.addaudithook(before_exec)
    if MONITORING:
        monitor()
    threading.setprofile(profile)
    sys.setprofile(profile)
    try:
        if program == "-c":
            exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
        else:
            runpy.run_path(program, run_name="__main__")
    finally:
        write(out)


main()
