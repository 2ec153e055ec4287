"""The one way coreroll talks to etcd: the `EtcdKV` port, and `open_kv(config)` to get one.

Everything outside coreroll/etcd/ (lock stores, the dashboard's sources, the audit log, node
agents, the fleet) uses this Protocol and the plain records below; no other module imports a
client library. Keys are text (etcd bytes decoded as UTF-8, undecodable bytes replaced), values
bytes, revisions ints (v3: the store revision; v2: the etcd index).

    kv = await open_kv(config)                 # config.api "v3" (or "auto") / "v2"; connected
    await kv.put("a/b", b"1")                  # -> revision
    await kv.get("a/b")                        # -> KeyValue | None
    await kv.get_prefix("a/", newest=10)       # -> Listing(kvs, revision), one consistent read
    await kv.compare_and_swap("a/b", b"2", 5)  # write only if mod_revision is 5 (0: only if absent)
    lease = await kv.grant_lease(30); await kv.put("a/alive", b"", lease=lease)
    watch = await kv.watch_prefix("a/", start_revision)   # established when this returns
    async for event in watch: ...              # WatchEvent; `await watch.cancel()` ends it
    await kv.status()                          # -> EtcdStatus; a health probe
    await kv.close()

Errors: `EtcdUnavailableError` (no endpoint answers, or the connection broke), `EtcdConfigError`
(TLS files, credentials), `EtcdCompactedError` (watch from a revision etcd no longer has),
`V2ApiMissingError`; any other etcd refusal is an `EtcdError`.

Backends (`BACKENDS`: name -> module defining `async def connect(config) -> EtcdKV`):
- "v3": gRPC through aetcd (coreroll/etcd/v3kv.py): watches, many writers;
- "v3-gateway": etcd's JSON gateway (`/v3/kv/range`...) over the stdlib (coreroll/etcd/gateway.py):
  what short commands use, since importing gRPC costs more than their whole run;
- "v2": the v2 keys API (coreroll/etcd/v2kv.py), where Flatcar's locksmithd keeps its semaphores.
`open_kv` picks "v2" for `config.api == "v2"`, else "v3" or "v3-gateway" by `config.v3_transport`.
Only the chosen backend's module (and client library) is imported.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from coreroll.etcd.config import EtcdConfig

BACKENDS = {
    "v3": "coreroll.etcd.v3kv",
    "v3-gateway": "coreroll.etcd.gateway",
    "v2": "coreroll.etcd.v2kv",
}


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int = 0
    lease: int = 0


@dataclass(frozen=True)
class Listing:
    """Keys under a prefix, read at `revision` (watch from `revision + 1` to miss nothing)."""

    kvs: Sequence[KeyValue]
    revision: int


@dataclass(frozen=True)
class CasResult:
    """`ok`: written at `revision`. Else `current` is the value that won, when the backend learnt
    it from the failed compare (v3 does; v2 does not), None when unknown or absent."""

    ok: bool
    revision: int = 0
    current: KeyValue | None = None


@dataclass(frozen=True)
class WatchEvent:
    kind: str  # "put" or "delete"
    key: str
    value: bytes | None  # None for a delete
    mod_revision: int


@dataclass(frozen=True)
class EtcdStatus:
    endpoint: str
    version: str
    revision: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class Watch(Protocol):
    """An established watch: iterate its events; `cancel()` ends the iteration."""

    def __aiter__(self) -> AsyncIterator[WatchEvent]: ...

    async def cancel(self) -> None: ...


@runtime_checkable
class EtcdKV(Protocol):
    """One connection to an etcd cluster through one API; see the module docstring."""

    api: str  # "v3" or "v2": the keyspace (the gateway is v3)
    endpoint: str  # the member in use

    async def get(self, key: str) -> KeyValue | None: ...

    async def get_prefix(
        self, prefix: str, *, revision: int = 0, newest: int | None = None, page: int = 1000
    ) -> Listing:
        """Every key under `prefix` (at `revision`, 0 = now), or only the `newest` N by key; read
        `page` keys per request where the API pages (gRPC refuses replies over 4 MiB)."""
        ...

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int: ...

    async def delete(self, key: str) -> bool:
        """True when the key existed."""
        ...

    async def compare_and_swap(self, key: str, value: bytes, mod_revision: int) -> CasResult:
        """Write `value` only if `key` is at `mod_revision` (0: only if `key` is absent)."""
        ...

    async def grant_lease(self, ttl: int) -> int: ...

    async def keep_lease_alive(self, lease: int) -> int:
        """Refresh `lease`; its remaining TTL, 0 when etcd no longer has it."""
        ...

    async def revoke_lease(self, lease: int) -> None: ...

    async def watch_prefix(self, prefix: str, start_revision: int) -> Watch:
        """Each change under `prefix` from `start_revision` on, until cancelled. Creating it or
        iterating raises `EtcdCompactedError` when that history is gone, `EtcdUnavailableError`
        when the stream breaks or ends."""
        ...

    async def status(self) -> EtcdStatus: ...

    async def close(self) -> None: ...


def backend_name(config: EtcdConfig, api: str | None = None) -> str:
    """The backend for `api` (default `config.api`; "auto" means v3 here)."""
    api = api or config.api
    if api == "v2":
        return "v2"
    return "v3-gateway" if config.v3_transport == "gateway" else "v3"


async def open_kv(config: EtcdConfig, api: str | None = None) -> EtcdKV:
    """A connected `EtcdKV` for `api` (default `config.api`); raises what `connect` raises. An
    unusable JSON gateway (`GatewayUnusableError`) falls back to gRPC."""
    from coreroll.etcd.errors import GatewayUnusableError

    name = backend_name(config, api)
    try:
        kv: EtcdKV = await importlib.import_module(BACKENDS[name]).connect(config)
    except GatewayUnusableError:
        kv = await importlib.import_module(BACKENDS["v3"]).connect(config)
    return kv


def prefix_range_end(prefix: bytes) -> bytes:
    """etcd's range end for "every key starting with `prefix`": the prefix with its last byte
    below 0xff incremented (b"\\0" when every byte is 0xff: the whole keyspace)."""
    end = bytearray(prefix)
    for index in range(len(end) - 1, -1, -1):
        if end[index] < 0xFF:
            end[index] += 1
            return bytes(end[: index + 1])
    return b"\0"


def decode_key(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")
