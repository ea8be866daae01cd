"""A small program for `dtk pyflow` to trace: nested calls, recursion, a generator, an
exception caught one level up, and a call into the standard library (hidden by default)."""

import json


def parse(text):
    return json.loads(text)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def squares(n):
    for i in range(n):
        yield i * i


def risky(x):
    if x < 0:
        raise ValueError("negative")
    return x


def guarded(x):
    try:
        return risky(x)
    except ValueError:
        return 0


def main():
    config = parse('{"depth": 4}')
    total = fib(config["depth"])
    total += sum(squares(3))
    total += guarded(-1) + guarded(2)
    print(total)


if __name__ == "__main__":
    main()
