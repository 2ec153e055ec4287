"""The `EtcdKV` port on etcd v3 over gRPC (aetcd): `await connect(config) -> AetcdKV`.

`AetcdKV(client, config=None)` wraps a connected aetcd client (`coreroll.etcd.v3.connect_v3`).
When it opened the client itself (`connect`) from several endpoints, a call that finds the
member gone (gRPC UNAVAILABLE) reconnects through `config.endpoints` once and repeats (reads, CAS and puts are safe
to repeat: a CAS that applied fails its compare the second time and the caller re-reads). aetcd's
errors come out as coreroll's: `EtcdUnavailableError`, `EtcdCompactedError`, `EtcdError`.
Listings are paged (gRPC refuses replies over 4 MiB; 10,000 node statuses are ~8 MB).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import aetcd
from aetcd import exceptions as aetcd_exceptions

from coreroll.etcd.aetcd_private import range_request, status_request
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdCompactedError, EtcdError, EtcdUnavailableError
from coreroll.etcd.port import (
    CasResult,
    EtcdStatus,
    KeyValue,
    Listing,
    WatchEvent,
    decode_key,
    prefix_range_end,
)
from coreroll.etcd.v3 import connect_v3

T = TypeVar("T")
PAGE = 1000


def _kv(raw: Any) -> KeyValue:
    return KeyValue(
        decode_key(bytes(raw.key)),
        bytes(raw.value),
        int(raw.mod_revision),
        int(raw.create_revision),
        int(getattr(raw, "lease", 0) or 0),
    )


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def translate(exc: aetcd_exceptions.ClientError, endpoint: str) -> EtcdError:
    """aetcd's exception as coreroll's."""
    if isinstance(exc, aetcd_exceptions.RevisionCompactedError | aetcd_exceptions.WatchTimeoutError):
        # aetcd reports a watch on compacted history at creation as a timeout
        return EtcdCompactedError(f"etcd at {endpoint} no longer has that history ({_short(exc)})")
    if isinstance(exc, aetcd_exceptions.ConnectionFailedError | aetcd_exceptions.ConnectionTimeoutError):
        return EtcdUnavailableError((endpoint,), _short(exc))
    return EtcdError(f"etcd at {endpoint}: {_short(exc)}")


class AetcdWatch:
    def __init__(self, watch: Any, endpoint: str) -> None:
        self._watch = watch
        self._endpoint = endpoint
        self._cancelled = False

    async def __aiter__(self) -> AsyncIterator[WatchEvent]:
        try:
            async for event in self._watch:
                kv = event.kv
                put = event.kind == aetcd.rtypes.EventKind.PUT
                yield WatchEvent(
                    "put" if put else "delete",
                    decode_key(bytes(kv.key)),
                    bytes(kv.value) if put else None,
                    int(kv.mod_revision),
                )
        except aetcd_exceptions.ClientError as exc:
            if self._cancelled:
                return
            raise translate(exc, self._endpoint) from exc
        if not self._cancelled:
            raise EtcdUnavailableError((self._endpoint,), "etcd closed the watch")

    async def cancel(self) -> None:
        self._cancelled = True
        with contextlib.suppress(Exception):  # the stream may already be gone
            async with asyncio.timeout(1.0):
                await self._watch.cancel()


class AetcdKV:
    api = "v3"

    def __init__(self, client: aetcd.Client, config: EtcdConfig | None = None, *, own: bool = False) -> None:
        self.client = client
        self.config = config
        self._own = own
        self._reconnecting = asyncio.Lock()

    @property
    def endpoint(self) -> str:
        return str(getattr(self.client, "endpoint", "") or f"{self.client._host}:{self.client._port}")

    @property
    def rpc_seconds(self) -> float:
        return self.config.timeout if self.config is not None else 5.0

    async def _call(self, op: Callable[[aetcd.Client], Awaitable[T]]) -> T:
        client = self.client
        try:
            try:
                return await op(client)
            except aetcd_exceptions.ConnectionFailedError:
                if not self._own or self.config is None or len(self.config.endpoints) < 2:
                    raise  # one endpoint: gRPC reconnects the channel by itself
                async with self._reconnecting:
                    if self.client is client:
                        with contextlib.suppress(Exception):
                            await client.close()
                        self.client = await connect_v3(self.config)
                return await op(self.client)
        except aetcd_exceptions.ClientError as exc:
            raise translate(exc, self.endpoint) from exc

    async def get(self, key: str) -> KeyValue | None:
        got = await self._call(lambda c: c.get(key.encode()))
        return _kv(got) if got is not None else None

    async def get_prefix(
        self, prefix: str, *, revision: int = 0, newest: int | None = None, page: int = PAGE
    ) -> Listing:
        start = prefix.encode()
        end = prefix_range_end(start)
        found: list[KeyValue] = []
        while True:
            reply = await self._call(
                lambda c, s=start, r=revision: range_request(
                    c, s, end, revision=r, limit=newest or page, newest_first=newest is not None,
                    rpc_seconds=self.rpc_seconds,
                )
            )  # fmt: skip
            revision = revision or int(reply.header.revision)
            found.extend(_kv(kv) for kv in reply.kvs)
            if newest is not None or not reply.more or not reply.kvs:
                break
            start = bytes(reply.kvs[-1].key) + b"\0"
        if newest is not None:
            found.reverse()  # oldest first, like every other listing
        return Listing(found, revision)

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        reply = await self._call(lambda c: c.put(key.encode(), value, lease=lease or None))
        return int(reply.header.revision)

    async def delete(self, key: str) -> bool:
        reply = await self._call(lambda c: c.delete(key.encode()))
        return reply is not None and int(getattr(reply, "deleted", 1)) > 0

    async def compare_and_swap(self, key: str, value: bytes, mod_revision: int) -> CasResult:
        raw = key.encode()

        async def op(c: aetcd.Client) -> CasResult:
            compare = (
                c.transactions.version(raw) == 0
                if mod_revision == 0
                else c.transactions.mod(raw) == mod_revision
            )
            ok, responses = await c.transaction(
                compare=[compare],
                success=[c.transactions.put(raw, value)],
                failure=[c.transactions.get(raw)],  # the winner's value, for the retry
            )
            if ok:
                return CasResult(True, int(responses[0].response_put.header.revision))
            found = responses[0] if responses else []
            return CasResult(False, 0, _kv(found[0][1]) if found else None)

        return await self._call(op)

    async def grant_lease(self, ttl: int) -> int:
        lease = await self._call(lambda c: c.lease(ttl))
        return int(lease.id)

    async def keep_lease_alive(self, lease: int) -> int:
        reply = await self._call(lambda c: c.refresh_lease(lease))
        return int(reply.TTL) if reply is not None and reply.TTL > 0 else 0

    async def revoke_lease(self, lease: int) -> None:
        await self._call(lambda c: c.revoke_lease(lease))

    async def watch_prefix(self, prefix: str, start_revision: int) -> AetcdWatch:
        async def op(c: aetcd.Client) -> Any:
            async with asyncio.timeout(self.rpc_seconds):
                return await c.watch_prefix(prefix.encode(), start_revision=start_revision)

        try:
            watch = await self._call(op)
        except TimeoutError as exc:
            raise EtcdUnavailableError((self.endpoint,), "no reply to creating a watch") from exc
        return AetcdWatch(watch, self.endpoint)

    async def status(self) -> EtcdStatus:
        reply = await self._call(lambda c: status_request(c, self.rpc_seconds))
        return EtcdStatus(self.endpoint, str(reply.version), int(reply.header.revision))

    async def close(self) -> None:
        if self._own:
            with contextlib.suppress(Exception):
                await self.client.close()


async def connect(config: EtcdConfig) -> AetcdKV:
    return AetcdKV(await connect_v3(config), config, own=True)
