"""A program that runs until it is killed: says it is ready, then calls tick() every 5 ms."""

import sys
import time


def tick(n):
    return n + 1


def main():
    print("ready", flush=True)
    n = 0
    while True:
        n = tick(n)
        time.sleep(0.005)


main()
