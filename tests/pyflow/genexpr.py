"""A generator expression consumed by sum(), and one by a for loop: every resume is shown,
and returns at the right depth."""


def square(x):
    return x * x


def main():
    total = sum(square(x) for x in range(4))
    for y in (square(x) for x in range(2)):
        total += y
    return total


main()
