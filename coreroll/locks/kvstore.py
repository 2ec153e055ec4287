"""The lock store over the `EtcdKV` port (coreroll.etcd.port), whatever the etcd API.

`KVLockStore(config, kv=None, api="v3")`: creation is `compare_and_swap(key, value, 0)` (v3
`txn(version == 0)`, v2 `PUT ?prevExist=false`), CAS is `compare_and_swap(key, value, seen)` (v3
`txn(mod_revision == seen)` whose failure branch reads the winner's value; v2 `PUT ?prevIndex=seen`).
Without a `kv` the store opens its own on first use (`open_kv(config, api)`; the v3 backend
reconnects through the endpoint list when the member in use dies) and closes it; a `kv` given is
shared and left open. The watch lists `coreos.com/updateengine/rebootlock/` then follows it from
the next revision; when etcd no longer has that history (v3 compaction, v2's 1000-event window)
it lists again and reports every group's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdCompactedError
from coreroll.etcd.port import EtcdKV, open_kv
from coreroll.locks.keys import LOCK_PREFIX, is_semaphore_key
from coreroll.locks.store import GroupState, LockStore, state_from_value


class KVLockStore(LockStore):
    api = "v3"

    def __init__(self, config: EtcdConfig, *, kv: EtcdKV | None = None, **kwargs: float) -> None:
        super().__init__(config, **kwargs)
        self._kv = kv
        self._own_kv = kv is None
        self._connecting = asyncio.Lock()

    async def kv(self) -> EtcdKV:
        """The port this store writes through (connected on first use)."""
        if self._kv is None:
            async with self._connecting:
                if self._kv is None:
                    self._kv = await open_kv(self.config, self.api)
        return self._kv

    async def v3_kv(self) -> EtcdKV | None:
        return await self.kv() if self.api == "v3" else None

    async def _read(self, key: str) -> tuple[bytes | None, int]:
        got = await (await self.kv()).get(key)
        return (None, 0) if got is None else (got.value, got.mod_revision)

    async def _create(self, key: str, value: bytes) -> bool:
        return (await (await self.kv()).compare_and_swap(key, value, 0)).ok

    async def _cas(
        self, key: str, value: bytes, revision: int
    ) -> tuple[int | None, tuple[bytes | None, int] | None]:
        result = await (await self.kv()).compare_and_swap(key, value, revision)
        if result.ok:
            return result.revision, None
        if result.current is None:
            return None, None  # absent, or a backend that cannot tell (v2): the caller re-reads
        return None, (result.current.value, result.current.mod_revision)

    async def _snapshot(self) -> tuple[list[tuple[str, bytes, int]], int]:
        listing = await (await self.kv()).get_prefix(LOCK_PREFIX)
        found = [(kv.key, kv.value, kv.mod_revision) for kv in listing.kvs if is_semaphore_key(kv.key)]
        return found, listing.revision

    async def _list(self) -> list[tuple[str, bytes, int]]:
        return (await self._snapshot())[0]

    async def watch(self) -> AsyncIterator[GroupState]:
        """Snapshot of every group, then each change; after lost history, a new snapshot."""
        kv = await self.kv()
        while True:
            listing, revision = await self._snapshot()
            for key, value, mod_revision in listing:
                yield state_from_value(key, value, mod_revision)
            watch = await kv.watch_prefix(LOCK_PREFIX, revision + 1)
            try:
                async for event in watch:
                    if is_semaphore_key(event.key):
                        yield state_from_value(event.key, event.value, event.mod_revision)
            except EtcdCompactedError:
                continue  # list again
            finally:
                await watch.cancel()

    async def close(self) -> None:
        kv, self._kv = self._kv, None
        if kv is not None and self._own_kv:
            await kv.close()
