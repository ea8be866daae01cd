"""send() into a generator, and an async generator consumed by an async comprehension."""

import asyncio


def echo():
    received = yield 1
    while received is not None:
        received = yield received * 2


def talk():
    g = echo()
    next(g)
    g.send(3)
    g.send(4)
    try:
        g.send(None)
    except StopIteration:
        pass


async def ticks(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def amain():
    return [i async for i in ticks(3)]


def main():
    talk()
    asyncio.run(amain())


main()
