"""Recursion: direct (fib), mutual (is_even/is_odd), and through a library (sorted's key)."""


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def is_even(n):
    return True if n == 0 else is_odd(n - 1)


def is_odd(n):
    return False if n == 0 else is_even(n - 1)


def key(word):
    return len(word)


def main():
    fib(6)
    is_even(5)
    sorted(["ccc", "a", "bb"], key=key)


main()
