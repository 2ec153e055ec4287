"""How a lock store retries under contention, against a real etcd through both APIs.

Requests are counted by wrapping the store's own backend calls; every value is checked in etcd.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.locks import LockStore, open_lock_store, semaphore_key
from tests.locks.rawetcd import raw_get

GROUP = "retry"


def count_requests(store: LockStore) -> Counter[str]:
    """Counts the etcd requests `store` sends from now on: read, create, cas."""
    sent: Counter[str] = Counter()
    for name in ("read", "create", "cas"):
        original: Callable[..., Awaitable[Any]] = getattr(store, f"_{name}")

        async def counted(
            *args: Any, _name: str = name, _original: Callable[..., Awaitable[Any]] = original
        ) -> Any:
            sent[_name] += 1
            return await _original(*args)

        setattr(store, f"_{name}", counted)
    return sent


async def test_callers_of_one_store_take_turns_in_arrival_order(store: LockStore) -> None:
    count = 30
    await store.set_max(GROUP, count)
    holders = [f"m{n:02d}" for n in range(count)]
    revisions = await asyncio.gather(*(store.lock(GROUP, h) for h in holders))
    # Nobody in this process beat anybody else's compare-and-swap, and the first to ask went first.
    assert store.conflicts == 0
    assert list(revisions) == sorted(revisions) and len(set(revisions)) == count
    sem, _ = await store.get(GROUP)
    assert sem.holders == holders and sem.semaphore == 0


async def test_one_client_locks_and_unlocks_with_one_request_each(store: LockStore) -> None:
    await store.set_max(GROUP, 2)
    sent = count_requests(store)
    await store.lock(GROUP, "a")
    await store.unlock(GROUP, "a")
    # The store remembers the value it wrote last: no read before each compare-and-swap.
    assert sent == Counter(cas=2)


async def test_lost_compare_is_retried_against_the_current_value(
    store: LockStore, config: EtcdConfig, api: str
) -> None:
    await store.set_max(GROUP, 3)
    await store.lock(GROUP, "a")
    other = open_lock_store(config)
    try:
        await other.lock(GROUP, "b")  # another machine wins in between
    finally:
        await other.close()
    sent = count_requests(store)
    await store.lock(GROUP, "c")
    assert store.conflicts == 1
    # v3's failed compare returns the winner's value, so the retry needs no read; v2 cannot say it.
    assert sent == (Counter(cas=2) if api == "v3" else Counter(cas=2, read=1))
    assert raw_get(config.endpoints[0], api, semaphore_key(GROUP)) == (
        b'{"semaphore":0,"max":3,"holders":["a","b","c"]}'
    )


async def test_refusal_by_a_remembered_value_is_checked_against_etcd(
    store: LockStore, config: EtcdConfig
) -> None:
    await store.lock(GROUP, "a")  # max 1: this store now remembers a full semaphore held by "a"
    other = open_lock_store(config)
    try:
        await other.unlock(GROUP, "a")
    finally:
        await other.close()
    # Neither "semaphore is at 0" nor "holder exists" from what the store saw before.
    await store.lock(GROUP, "a")
    sem, _ = await store.get(GROUP)
    assert sem.holders == ["a"] and sem.semaphore == 0
