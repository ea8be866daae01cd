"""Exceptions: raised and caught a few frames up, re-raised, and raised inside a generator."""


def fail(n):
    if n == 0:
        raise ValueError("deep")
    return fail(n - 1)


def catch():
    try:
        fail(3)
    except ValueError:
        return "caught"


def reraise():
    try:
        fail(0)
    except ValueError as e:
        raise KeyError("again") from e


def broken():
    yield 1
    raise RuntimeError("in a generator")


def main():
    catch()
    try:
        reraise()
    except KeyError:
        pass
    try:
        for _ in broken():
            pass
    except RuntimeError:
        pass


main()
