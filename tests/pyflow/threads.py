"""Threads: each worker runs its own call tree; the main thread runs one too."""

import threading


def square(n):
    return n * n


def work(n):
    total = 0
    for i in range(n):
        total += square(i)
    return total


def main():
    workers = [threading.Thread(target=work, args=(3 + i,)) for i in range(3)]
    for w in workers:
        w.start()
    work(2)
    for w in workers:
        w.join()


main()
