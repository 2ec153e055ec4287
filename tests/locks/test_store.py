"""The lock stores against a real etcd, through both APIs."""

from __future__ import annotations

import asyncio

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdUnavailableError
from coreroll.locks import (
    GroupState,
    HolderExistsError,
    HolderNotFoundError,
    LockStore,
    Semaphore,
    SemaphoreFormatError,
    SemaphoreFullError,
    SemaphoreRangeError,
    open_lock_store,
    semaphore_key,
)
from coreroll.wire.keys import LOCK_DEFAULT_KEY, LOCK_PREFIX, lock_group_key
from tests.locks.rawetcd import raw_get, raw_keys, raw_put

DEFAULT = LOCK_DEFAULT_KEY
ODD_GROUPS = {
    "a/b": "a%2Fb",
    "two words": "two+words",
    "100%": "100%25",
    "café 日本": "caf%C3%A9+%E6%97%A5%E6%9C%AC",
}


async def test_get_creates_locksmiths_initial_value(store: LockStore, config: EtcdConfig, api: str) -> None:
    sem, revision = await store.get()
    assert (sem.semaphore, sem.max, sem.holders) == (1, 1, [])
    assert revision > 0
    assert raw_get(config.endpoints[0], api, DEFAULT) == b'{"semaphore":1,"max":1,"holders":null}'


async def test_lock_unlock_set_max_write_go_bytes(store: LockStore, config: EtcdConfig, api: str) -> None:
    endpoint = config.endpoints[0]
    await store.lock("", "69d27b356a94476da859461d3a3bc6fd")
    assert raw_get(endpoint, api, DEFAULT) == (
        b'{"semaphore":0,"max":1,"holders":["69d27b356a94476da859461d3a3bc6fd"]}'
    )
    with pytest.raises(SemaphoreFullError, match="semaphore is at 0"):
        await store.lock("", "other")
    assert await store.set_max("", 4) == (1, 4)
    with pytest.raises(HolderExistsError):
        await store.lock("", "69d27b356a94476da859461d3a3bc6fd")
    await store.lock("", "0000")
    assert raw_get(endpoint, api, DEFAULT) == (
        b'{"semaphore":2,"max":4,"holders":["0000","69d27b356a94476da859461d3a3bc6fd"]}'
    )
    assert await store.set_max("", 1) == (4, 1)
    sem, _ = await store.get()
    assert (sem.semaphore, sem.max) == (-1, 1)
    await store.unlock("", "0000")
    await store.unlock("", "69d27b356a94476da859461d3a3bc6fd")
    assert raw_get(endpoint, api, DEFAULT) == b'{"semaphore":1,"max":1,"holders":[]}'


async def test_unlock_of_non_holder_leaves_state_unchanged(
    store: LockStore, config: EtcdConfig, api: str
) -> None:
    await store.lock("", "a")
    before = raw_get(config.endpoints[0], api, DEFAULT)
    with pytest.raises(HolderNotFoundError, match="holder does not exist"):
        await store.unlock("", "b")
    assert raw_get(config.endpoints[0], api, DEFAULT) == before


@pytest.mark.parametrize("junk", [b"not json", b'{"semaphore":1}', b'{"semaphore":1,"max":1,"holders":"x"}'])
async def test_unparsable_value_is_reported_and_never_overwritten(
    store: LockStore, config: EtcdConfig, api: str, junk: bytes
) -> None:
    key = semaphore_key("lb")
    raw_put(config.endpoints[0], api, key, junk)
    for attempt in (store.get("lb"), store.lock("lb", "a"), store.unlock("lb", "a"), store.set_max("lb", 3)):
        with pytest.raises(SemaphoreFormatError) as caught:
            await attempt
        assert key in str(caught.value)
    assert raw_get(config.endpoints[0], api, key) == junk
    states = await store.group_states()
    assert states["lb"].semaphore is None and key in (states["lb"].error or "")
    assert "lb" not in await store.groups()


async def test_changes_beyond_int64_are_refused_and_nothing_is_written(
    store: LockStore, config: EtcdConfig, api: str
) -> None:
    endpoint = config.endpoints[0]
    with pytest.raises(SemaphoreRangeError, match="max would be 9223372036854775808"):
        await store.set_max("", 2**63)
    assert raw_get(endpoint, api, DEFAULT) == b'{"semaphore":1,"max":1,"holders":null}'
    full = b'{"semaphore":9223372036854775807,"max":9223372036854775807,"holders":["a"]}'
    raw_put(endpoint, api, DEFAULT, full)
    with pytest.raises(SemaphoreRangeError, match="semaphore would be 9223372036854775808"):
        await store.unlock("", "a")
    assert raw_get(endpoint, api, DEFAULT) == full
    assert (await store.get())[0].holders == ["a"]


async def test_odd_group_names_use_go_query_escape(store: LockStore, config: EtcdConfig, api: str) -> None:
    for group in ODD_GROUPS:
        await store.lock(group, "m-" + group)
    keys = raw_keys(config.endpoints[0], api, LOCK_PREFIX)
    assert keys == sorted(lock_group_key(e) for e in ODD_GROUPS.values())
    listed = await store.groups()
    assert sorted(listed) == sorted(ODD_GROUPS)
    for group, sem in listed.items():
        assert sem.holders == ["m-" + group]


async def test_groups_lists_only_existing_semaphores(store: LockStore) -> None:
    assert await store.groups() == {}
    await store.get("")
    await store.set_max("lb", 2)
    groups = await store.groups()
    assert groups == {"": Semaphore(1, 1, []), "lb": Semaphore(2, 2, [])}


async def test_watch_yields_snapshot_then_each_state_with_revision(
    store: LockStore, config: EtcdConfig
) -> None:
    await store.set_max("lb", 2)
    await store.lock("lb", "a")
    seen: asyncio.Queue[GroupState] = asyncio.Queue()

    async def follow() -> None:
        async for state in store.watch():
            await seen.put(state)

    watcher = asyncio.create_task(follow())
    try:
        first = await asyncio.wait_for(seen.get(), 5)
        assert first.group == "lb" and first.semaphore is not None and first.semaphore.holders == ["a"]
        other = open_lock_store(config)
        try:
            rev_b = await other.lock("lb", "b")
            await other.lock("a/b", "c")
        finally:
            await other.close()
        got = [await asyncio.wait_for(seen.get(), 5) for _ in range(3)]
        assert got[0].group == "lb" and got[0].revision == rev_b
        assert got[0].semaphore is not None and got[0].semaphore.holders == ["a", "b"]
        assert got[1].group == "a/b" and got[1].semaphore == Semaphore(1, 1, [])  # created
        assert got[2].group == "a/b" and got[2].semaphore is not None and got[2].semaphore.holders == ["c"]
        assert got[0].revision < got[1].revision < got[2].revision
    finally:
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher


async def test_unreachable_etcd_names_every_endpoint(api: str) -> None:
    config = EtcdConfig(endpoints=("http://127.0.0.1:9", "http://127.0.0.1:7"), api=api, timeout=2.0)
    store = open_lock_store(config)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(EtcdUnavailableError) as caught:
        await store.get()
    await store.close()
    assert loop.time() - started < 2 * config.timeout + 1
    assert str(caught.value).startswith(
        "no etcd endpoints available, tried: http://127.0.0.1:9,http://127.0.0.1:7"
    )
