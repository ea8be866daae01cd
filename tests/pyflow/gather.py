"""asyncio.gather of two coroutines, and a task: each coroutine's creation is no call."""

import asyncio


async def work(n):
    await asyncio.sleep(0)
    return n


async def amain():
    task = asyncio.create_task(work(3))
    results = await asyncio.gather(work(1), work(2))
    return results, await task


asyncio.run(amain())
