"""MachineLocks: one request per machine at a time, handed over in arrival order, nothing left behind."""

from __future__ import annotations

import asyncio

from coreroll.server.machine_locks import MachineLocks


async def test_requests_of_one_machine_take_turns_and_others_do_not_wait() -> None:
    locks = MachineLocks()
    order: list[str] = []
    release_first = asyncio.Event()

    async def request(machine: str, name: str, hold: asyncio.Event | None = None) -> None:
        await locks.acquire(machine)
        try:
            order.append(name)
            if hold is not None:
                await hold.wait()
        finally:
            locks.release(machine)

    first = asyncio.create_task(request("x", "x1", release_first))
    await asyncio.sleep(0)  # x1 holds x
    waiting = [asyncio.create_task(request("x", f"x{i}")) for i in (2, 3)]
    await request("y", "y1")  # another machine goes straight through
    assert order == ["x1", "y1"]
    release_first.set()
    await asyncio.gather(first, *waiting)
    assert order == ["x1", "y1", "x2", "x3"]
    assert len(locks) == 0


async def test_a_cancelled_waiter_neither_blocks_nor_keeps_the_lock() -> None:
    locks = MachineLocks()
    await locks.acquire("x")
    cancelled = asyncio.create_task(locks.acquire("x"))
    after = asyncio.create_task(locks.acquire("x"))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    locks.release("x")
    await asyncio.wait_for(after, 1)  # the lock went past the cancelled waiter
    locks.release("x")
    assert len(locks) == 0


async def test_a_waiter_cancelled_as_the_lock_reaches_it_passes_it_on() -> None:
    locks = MachineLocks()
    await locks.acquire("x")
    handed = asyncio.create_task(locks.acquire("x"))
    after = asyncio.create_task(locks.acquire("x"))
    await asyncio.sleep(0)
    locks.release("x")  # hands the lock to `handed` ...
    handed.cancel()  # ... which is cancelled before it runs
    await asyncio.gather(handed, return_exceptions=True)
    await asyncio.wait_for(after, 1)
    locks.release("x")
    assert len(locks) == 0
