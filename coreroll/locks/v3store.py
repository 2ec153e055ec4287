"""The lock store on etcd v3 (aetcd): CAS is `txn(mod_revision(key) == seen) then put`.

Creation is `txn(version(key) == 0) then put`. The client is connected lazily with `connect_v3`;
when the endpoint in use drops (gRPC UNAVAILABLE), the store reconnects through the endpoint list
once and repeats the call (reads and CAS writes are safe to repeat: a CAS that already applied
fails its compare on the second try, and the caller re-reads).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import aetcd
from aetcd import exceptions as aetcd_exceptions

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3
from coreroll.locks.keys import LOCK_PREFIX, is_semaphore_key
from coreroll.locks.store import GroupState, LockStore, state_from_value

T = TypeVar("T")


class V3LockStore(LockStore):
    def __init__(self, config: EtcdConfig, *, client: aetcd.Client | None = None, **kwargs: float) -> None:
        super().__init__(config, **kwargs)
        self._client = client
        self._own_client = client is None
        self._connecting = asyncio.Lock()

    async def client(self) -> aetcd.Client:
        if self._client is None:
            async with self._connecting:
                if self._client is None:
                    self._client = await connect_v3(self.config)
        return self._client

    async def v3_client(self) -> aetcd.Client:
        return await self.client()

    async def _call(self, op: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        client = await self.client()
        try:
            return await op(client)
        except aetcd_exceptions.ConnectionFailedError:
            if not self._own_client:
                raise
            if self._client is client:
                self._client = None
                await client.close()
            return await op(await self.client())

    async def _read(self, key: str) -> tuple[bytes | None, int]:
        got = await self._call(lambda c: c.get(key.encode()))
        if got is None:
            return None, 0
        return got.value, got.mod_revision

    async def _create(self, key: str, value: bytes) -> bool:
        async def op(c: aetcd.Client) -> bool:
            ok, _ = await c.transaction(
                compare=[c.transactions.version(key.encode()) == 0],
                success=[c.transactions.put(key.encode(), value)],
                failure=[],
            )
            return bool(ok)

        return await self._call(op)

    async def _cas(
        self, key: str, value: bytes, revision: int
    ) -> tuple[int | None, tuple[bytes | None, int] | None]:
        async def op(c: aetcd.Client) -> tuple[int | None, tuple[bytes | None, int] | None]:
            ok, responses = await c.transaction(
                compare=[c.transactions.mod(key.encode()) == revision],
                success=[c.transactions.put(key.encode(), value)],
                failure=[c.transactions.get(key.encode())],  # the winner's value, for the retry
            )
            if ok:
                return int(responses[0].response_put.header.revision), None
            found = responses[0] if responses else []
            if not found:
                return None, (None, 0)
            kv = found[0][1]
            return None, (kv.value, kv.mod_revision)

        return await self._call(op)

    async def _list(self) -> list[tuple[str, bytes, int]]:
        listing = await self._call(lambda c: c.get_prefix(LOCK_PREFIX.encode()))
        out = []
        for kv in listing:
            key = kv.key.decode("utf-8", errors="replace")
            if is_semaphore_key(key):
                out.append((key, kv.value, kv.mod_revision))
        return out

    async def watch(self) -> AsyncIterator[GroupState]:
        """Snapshot of every group, then each change; resumes after a dropped stream."""
        client = await self.client()
        listing = await client.get_prefix(LOCK_PREFIX.encode())
        next_revision = listing.header.revision + 1
        for kv in listing:
            key = kv.key.decode("utf-8", errors="replace")
            if is_semaphore_key(key):
                yield state_from_value(key, kv.value, kv.mod_revision)
        while True:
            watch = await client.watch_prefix(LOCK_PREFIX.encode(), start_revision=next_revision)
            try:
                async for event in watch:
                    key = event.kv.key.decode("utf-8", errors="replace")
                    next_revision = event.kv.mod_revision + 1
                    if not is_semaphore_key(key):
                        continue
                    value = None if event.kind == "DELETE" else event.kv.value
                    yield state_from_value(key, value, event.kv.mod_revision)
                return  # cancelled
            except aetcd_exceptions.ConnectionFailedError:
                if not self._own_client:
                    raise
                self._client = None
                await client.close()
                client = await self.client()
            finally:
                with contextlib.suppress(Exception):  # the stream may already be gone
                    await watch.cancel()

    async def close(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.close()
        self._client = None
