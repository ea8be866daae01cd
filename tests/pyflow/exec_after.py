"""What exec_before.py becomes: a new program, whose flow starts at depth 0."""


def leaf(n):
    return n + 1


def branch():
    return leaf(1) + leaf(2)


branch()
