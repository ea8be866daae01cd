"""A program that runs until it is killed: says it is ready, then runs phase() again and
again. Each phase calls step() every 5 ms until the file named by the argument exists, then
removes the file and returns."""

import os
import sys
import time


def step(n):
    return n + 1


def phase(stop):
    n = 0
    while not os.access(stop, os.F_OK):
        n = step(n)
        time.sleep(0.005)
    os.remove(stop)
    return n


def main():
    print("ready", flush=True)
    while True:
        phase(sys.argv[1])


main()
