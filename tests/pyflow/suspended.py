"""Generators stopped while suspended: close() runs a `finally`, throw() raises at the yield,
suspended generators are dropped (which closes them), and new generators may take the memory
of dropped ones (their first run is an entry, not a resume)."""


def helper():
    return 1


def count(n):
    for i in range(n):
        yield i


def guarded():
    try:
        yield 1
        yield 2
    finally:
        helper()


def main():
    stopped = guarded()
    next(stopped)
    stopped.close()
    thrown = count(2)
    next(thrown)
    try:
        thrown.throw(ValueError("stop"))
    except ValueError:
        pass
    for _ in range(3):
        dropped = guarded()
        next(dropped)
        del dropped
    for _ in range(2):
        for _ in count(2):
            pass


main()
