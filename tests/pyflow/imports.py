"""Imports of standard modules, and library code calling back into the program."""

import collections
import functools
import json
import re


def hook(pairs):
    return dict(pairs)


def add(a, b):
    return a + b


def shout(match):
    return match.group(0).upper()


def main():
    json.loads('{"a": {"b": 1}}', object_pairs_hook=hook)
    functools.reduce(add, [1, 2, 3])
    re.sub(r"o", shout, "foo")
    collections.Counter("abca").most_common(1)


main()
