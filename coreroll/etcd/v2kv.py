"""The `EtcdKV` port on etcd's v2 keys API (`/v2/keys`): `await connect(config) -> V2KV`.

Where Flatcar's locksmithd keeps its semaphores. The mapping:
- key `a/b` is the v2 node `/a/b`; revisions are v2 indexes (modifiedIndex, X-Etcd-Index);
- `get_prefix("a/")` is a recursive, sorted GET of the directory `/a` (a prefix not ending in `/`
  lists its parent and filters); `newest=N` keeps the last N keys (v2 cannot read the past:
  `revision` must be 0);
- `compare_and_swap(key, value, n)` is `PUT ?prevIndex=n` (0: `?prevExist=false`); v2 never says
  who won, so `current` is None;
- a lease is a TTL: `put(key, value, lease=id)` writes with `ttl`, `keep_lease_alive` refreshes
  every key written under it (`?refresh=true&prevExist=true`), `revoke_lease` deletes them;
- `watch_prefix` long-polls `?wait=true&recursive=true&waitIndex=N`; etcd keeps 1000 v2 events,
  so falling further behind raises `EtcdCompactedError` (its error 401);
- `status()` reads `/version` (the v2 API has no revision of its own to report beyond the index).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdCompactedError, EtcdError
from coreroll.etcd.port import CasResult, EtcdStatus, KeyValue, Listing, WatchEvent
from coreroll.etcd.v2 import (
    COMPARE_FAILED,
    EVENT_INDEX_CLEARED,
    KEY_NOT_FOUND,
    NODE_EXIST,
    V2Client,
    V2KeyError,
    V2Node,
)

GONE = ("delete", "expire", "compareAndDelete")


def _path(key: str) -> str:
    return "/" + key.lstrip("/")


def _kv(node: V2Node) -> KeyValue:
    value = (
        b"" if node.dir or node.value is None else node.value.encode()
    )  # a dir where a value belongs: unparsable
    return KeyValue(node.key.lstrip("/"), value, node.modified_index, node.created_index)


@dataclass
class _Lease:
    ttl: int
    keys: dict[str, bytes] = field(default_factory=dict)


class V2Watch:
    def __init__(self, kv: V2KV, prefix: str, start_revision: int) -> None:
        self._kv = kv
        self._prefix = prefix
        self._next = start_revision
        self._cancelled = False

    async def __aiter__(self) -> AsyncIterator[WatchEvent]:
        directory, _ = _split_prefix(self._prefix)
        while not self._cancelled:
            try:
                event = await self._kv.client.watch(directory, wait_index=self._next, recursive=True)
            except V2KeyError as exc:
                if exc.code == EVENT_INDEX_CLEARED:
                    raise EtcdCompactedError(
                        f"etcd's v2 history no longer reaches index {self._next}"
                    ) from exc
                raise
            self._next = event.node.modified_index + 1
            key = event.node.key.lstrip("/")
            if event.node.dir or not key.startswith(self._prefix):
                continue
            if event.action in GONE:
                yield WatchEvent("delete", key, None, event.node.modified_index)
            else:
                yield WatchEvent("put", key, (event.node.value or "").encode(), event.node.modified_index)

    async def cancel(self) -> None:
        self._cancelled = True


def _split_prefix(prefix: str) -> tuple[str, str]:
    """(v2 directory to list, prefix to filter by)."""
    if prefix.endswith("/") or not prefix:
        return _path(prefix.rstrip("/")), prefix
    parent = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    return _path(parent), prefix


class V2KV:
    api = "v2"

    def __init__(self, client: V2Client, *, own: bool = True) -> None:
        self.client = client
        self._own = own
        self._leases: dict[int, _Lease] = {}

    @property
    def endpoint(self) -> str:
        return self.client.endpoint

    async def get(self, key: str) -> KeyValue | None:
        try:
            reply = await self.client.get(_path(key))
        except V2KeyError as exc:
            if exc.code == KEY_NOT_FOUND:
                return None
            raise
        return _kv(reply.node)

    async def get_prefix(
        self, prefix: str, *, revision: int = 0, newest: int | None = None, page: int = 0
    ) -> Listing:
        del page  # v2 lists a directory in one reply
        if revision:
            raise EtcdError("the v2 keys API cannot read a past revision")
        directory, wanted = _split_prefix(prefix)
        try:
            reply = await self.client.get(directory, recursive=True)
        except V2KeyError as exc:
            if exc.code == KEY_NOT_FOUND:
                return Listing([], exc.index)
            raise
        kvs = sorted((_kv(n) for n in reply.node.walk()), key=lambda kv: kv.key)
        kvs = [kv for kv in kvs if kv.key.startswith(wanted)]
        if newest is not None:
            kvs = kvs[-newest:] if newest > 0 else []
        return Listing(kvs, reply.etcd_index)

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        held = self._leases.get(lease) if lease else None
        if lease and held is None:
            raise EtcdError(f"lease {lease} is not known (revoked or expired)")
        reply = await self.client.put(_path(key), value, ttl=held.ttl if held else None)
        if held is not None:
            held.keys[key] = value
        return reply.node.modified_index

    async def delete(self, key: str) -> bool:
        try:
            await self.client.delete(_path(key))
        except V2KeyError as exc:
            if exc.code == KEY_NOT_FOUND:
                return False
            raise
        return True

    async def compare_and_swap(self, key: str, value: bytes, mod_revision: int) -> CasResult:
        try:
            if mod_revision == 0:
                reply = await self.client.create(_path(key), value)
            else:
                reply = await self.client.put(_path(key), value, prev_index=mod_revision)
        except V2KeyError as exc:
            if exc.code in (COMPARE_FAILED, KEY_NOT_FOUND, NODE_EXIST):
                return CasResult(False)  # v2 does not say what the value is now
            raise
        return CasResult(True, reply.node.modified_index)

    async def grant_lease(self, ttl: int) -> int:
        lease = secrets.randbits(62) + 1
        self._leases[lease] = _Lease(max(1, ttl))
        return lease

    async def keep_lease_alive(self, lease: int) -> int:
        held = self._leases.get(lease)
        if held is None:
            return 0
        for key in list(held.keys):
            try:
                await self.client.put(_path(key), None, ttl=held.ttl, refresh=True)
            except V2KeyError as exc:
                if exc.code != KEY_NOT_FOUND:
                    raise
                self._leases.pop(lease, None)  # expired while we were away: like a lost v3 lease
                return 0
        return held.ttl

    async def revoke_lease(self, lease: int) -> None:
        held = self._leases.pop(lease, None)
        for key in held.keys if held else ():
            await self.delete(key)

    async def watch_prefix(self, prefix: str, start_revision: int) -> V2Watch:
        return V2Watch(self, prefix, start_revision)

    async def status(self) -> EtcdStatus:
        reply = await self.client.version()
        try:
            doc = json.loads(reply)
        except ValueError:
            doc = {}
        version = str(doc.get("etcdserver", "")) if isinstance(doc, dict) else ""
        return EtcdStatus(self.endpoint, version)

    async def close(self) -> None:
        if self._own:
            await self.client.close()


async def connect(config: EtcdConfig) -> V2KV:
    """A `V2KV` on `config`; the first request finds the endpoint that answers."""
    return V2KV(V2Client(config))
