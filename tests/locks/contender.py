"""Contenders for the reboot lock: each takes it once, checks it is listed, and gives it back.

Run in-process (`await contend(...)`) or as a worker process:
`python -m tests.locks.contender ENDPOINT API GROUP PREFIX COUNT` prints `ready`, waits for a line on
stdin (the start signal, so every process contends at the same time), then prints one JSON list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.locks import SemaphoreFullError, open_lock_store
from coreroll.locks.store import LockStore


class SlotWaiter:
    """Wakes as many waiting contenders as the group has free slots, each time its state changes.

    Polling with 200 contenders would mostly measure the poll load; this is how a patient client
    waits. A wake-up can be missed (a slot frees between a refusal and the wait), so waits time out.
    """

    def __init__(self, store: LockStore, group: str) -> None:
        self.store, self.group = store, group
        self.changed = asyncio.Condition()

    async def follow(self) -> None:
        async for state in self.store.watch():
            if state.group == self.group and state.semaphore is not None and state.semaphore.semaphore > 0:
                async with self.changed:
                    self.changed.notify(state.semaphore.semaphore)

    async def wait(self) -> None:
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), random.uniform(0.2, 0.6))


async def _one(store: LockStore, waiter: SlotWaiter, holder: str, deadline: float) -> dict[str, Any]:
    group = waiter.group
    attempts = 0
    while True:
        attempts += 1
        try:
            lock_revision = await store.lock(group, holder)
            break
        except SemaphoreFullError:
            if time.monotonic() > deadline:
                raise
            await waiter.wait()
    sem, _ = await store.peek(group)
    listed = sem is not None and holder in sem.holders
    unlock_revision = await store.unlock(group, holder)
    return {
        "holder": holder,
        "lock": lock_revision,
        "unlock": unlock_revision,
        "listed": listed,
        "attempts": attempts,
    }


async def contend(
    config: EtcdConfig, group: str, holders: list[str], seconds: float = 60.0
) -> list[dict[str, Any]]:
    store = open_lock_store(config, conflict_deadline=seconds)
    deadline = time.monotonic() + seconds
    waiter = SlotWaiter(store, group)
    follower = asyncio.create_task(waiter.follow())
    try:
        # A TaskGroup cancels every other contender as soon as one fails, so nothing is left running.
        async with asyncio.TaskGroup() as group_tasks:
            tasks = [group_tasks.create_task(_one(store, waiter, h, deadline)) for h in holders]
        return [task.result() for task in tasks]
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await store.close()


def main() -> None:
    endpoint, api, group, prefix, count = sys.argv[1:6]
    config = EtcdConfig(endpoints=(endpoint,), api=api, timeout=30.0)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":  # the test gave up (stdin closed): do nothing
        return
    records = asyncio.run(
        contend(config, group, [f"{prefix}{i:03d}" for i in range(int(count))], seconds=120)
    )
    print(json.dumps(records), flush=True)


if __name__ == "__main__":
    main()
