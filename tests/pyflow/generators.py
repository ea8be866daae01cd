"""Generators: made and started at once, made and started later, passed to another function,
never started, generator expressions, `yield from` recursion, send() and a coroutine."""


def count(n):
    for i in range(n):
        yield i


def helper():
    return 1


def consume(it):
    return sum(it)


def walk(n):
    yield n
    if n:
        yield from walk(n - 1)


def echo():
    received = yield "ready"
    while received:
        received = yield received * 2


async def answer():
    return 42


def main():
    for _ in count(2):
        helper()
    later = count(1)
    helper()
    for _ in later:
        pass
    consume(count(3))
    list(x * 2 for x in range(2))
    never = count(1)
    del never
    list(walk(2))
    talk = echo()
    next(talk)
    talk.send(3)
    try:
        talk.send(0)
    except StopIteration:
        pass
    coro = answer()
    try:
        coro.send(None)
    except StopIteration:
        pass


main()
