"""Recursion deeper than 900 frames: past the 64 nested returns a uretprobe can follow, close
to CPython's default recursion limit (1,000)."""


def down(n):
    if n == 0:
        return 0
    return down(n - 1) + 1


def main():
    down(940)
    down(3)


main()
