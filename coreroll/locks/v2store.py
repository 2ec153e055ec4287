"""The lock store on etcd's v2 keys API, byte for byte what locksmith does.

Keys are the v3 keys with a leading `/`. Create is `PUT ?prevExist=false` (105 node exists means
someone else created it), CAS is `PUT ?prevIndex=<modifiedIndex>` (101 compare failed means a lost
race). The watch long-polls `?wait=true&recursive=true&waitIndex=N`; when etcd has dropped the
events after N (error 401, its v2 history keeps 1000 events) it lists again and carries on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v2 import (
    COMPARE_FAILED,
    EVENT_INDEX_CLEARED,
    KEY_NOT_FOUND,
    NODE_EXIST,
    V2Client,
    V2KeyError,
)
from coreroll.locks.keys import LOCK_PREFIX, is_semaphore_key
from coreroll.locks.store import GroupState, LockStore, state_from_value

V2_PREFIX = "/" + LOCK_PREFIX.rstrip("/")


class V2LockStore(LockStore):
    # A failed v2 compare costs a full raft round (etcd applies prevIndex PUTs in order) and the
    # retry needs another read, so back off more than v3: with 100 clients a 0.25 s cap let lost
    # compares crowd out the winning ones (bench/locks.py, `each` mode).
    backoff_base = 0.005
    backoff_cap = 1.0

    def __init__(self, config: EtcdConfig, *, client: V2Client | None = None, **kwargs: float) -> None:
        super().__init__(config, **kwargs)
        self._own_client = client is None
        self.client = client or V2Client(config)

    async def _read(self, key: str) -> tuple[bytes | None, int]:
        try:
            reply = await self.client.get("/" + key)
        except V2KeyError as exc:
            if exc.code == KEY_NOT_FOUND:
                return None, 0
            raise
        if reply.node.dir or reply.node.value is None:
            return b"", reply.node.modified_index  # a directory where a value belongs: unparsable
        return reply.node.value.encode(), reply.node.modified_index

    async def _create(self, key: str, value: bytes) -> bool:
        try:
            await self.client.create("/" + key, value)
        except V2KeyError as exc:
            if exc.code == NODE_EXIST:
                return False
            raise
        return True

    async def _cas(
        self, key: str, value: bytes, revision: int
    ) -> tuple[int | None, tuple[bytes | None, int] | None]:
        try:
            reply = await self.client.put("/" + key, value, prev_index=revision)
        except V2KeyError as exc:
            if exc.code in (COMPARE_FAILED, KEY_NOT_FOUND):
                return None, None  # v2 does not say what the value is now
            raise
        return reply.node.modified_index, None

    async def _snapshot(self) -> tuple[list[tuple[str, bytes, int]], int]:
        try:
            reply = await self.client.get(V2_PREFIX, recursive=True)
        except V2KeyError as exc:
            if exc.code == KEY_NOT_FOUND:
                return [], exc.index
            raise
        out = []
        for node in reply.node.walk():
            key = node.key.lstrip("/")
            if is_semaphore_key(key):
                out.append((key, (node.value or "").encode(), node.modified_index))
        return out, reply.etcd_index

    async def _list(self) -> list[tuple[str, bytes, int]]:
        return (await self._snapshot())[0]

    async def watch(self) -> AsyncIterator[GroupState]:
        listing, index = await self._snapshot()
        for key, value, revision in listing:
            yield state_from_value(key, value, revision)
        while True:
            try:
                event = await self.client.watch(V2_PREFIX, wait_index=index + 1, recursive=True)
            except V2KeyError as exc:
                if exc.code != EVENT_INDEX_CLEARED:
                    raise
                # We fell behind etcd's event window: list again and report every group's state.
                listing, index = await self._snapshot()
                for key, value, revision in listing:
                    yield state_from_value(key, value, revision)
                continue
            index = event.node.modified_index
            key = event.node.key.lstrip("/")
            if not is_semaphore_key(key):
                continue
            gone = event.action in ("delete", "expire", "compareAndDelete")
            value = None if gone else (event.node.value or "").encode()
            yield state_from_value(key, value, index)

    async def close(self) -> None:
        if self._own_client:
            await self.client.close()
