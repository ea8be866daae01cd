"""Replaces itself (os.execv) with exec_after.py, from two calls deep, after a few calls."""

import os
import sys


def where():
    return os.path.dirname(os.path.abspath(__file__))


def replace():
    after = os.path.join(where(), "exec_after.py")
    os.execv(sys.executable, [sys.executable, after])


def main():
    where()
    replace()


main()
