"""Code CPython generates: a dataclass's __init__ and __repr__ (compiled from a string by the
standard library, called here), and annotations (3.14's __annotate__)."""

from dataclasses import dataclass


@dataclass
class Point:
    x: int
    y: int = 0


def annotated(a: int, b: "Point") -> int:
    return a


def main():
    p = Point(1)
    q = Point(2, 3)
    repr(p)
    annotated(1, q)
    return annotated.__annotations__


main()
