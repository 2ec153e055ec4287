"""The dashboard's etcd source: list everything once, then watch from that revision; on any gap
(etcd gone, stream broken, history compacted) reconnect with backoff and list again.

    source = EtcdSource(config, sink)        # sink: Callable[[Update], None], e.g. UpdateBuffer.put
    await source.run()                       # runs until cancelled or source.stop()

What it reads (etcd v3, consistent: every prefix is listed at one revision, then watched from the
next one):
- `coreroll/v1/nodes/<id>/status` and `/alive`  -> `NodeStatus`, `NodeAlive`
- `coreroll/v1/commands/<id>/<cid>`             -> `NodeCommand`
- `coreroll/v1/audit/<id>` (the newest `audit_limit` at listing, then every new one) -> `AuditRecord`
- locksmith semaphores `coreos.com/updateengine/rebootlock/...`, by `config.api`:
  "v3" -> `LockState(kind="v3")` from the v3 listing and watch; "v2" -> the v2 lock store
  (coreroll.locks) listed then watched -> `LockState(kind="v2")`; "auto" (the dashboard's default)
  -> both: v3 always, v2 whenever etcd serves it, so a semaphore appearing later on either API shows
  up. The snapshot's `lock_kinds` says which APIs are watched (the header shows them). With "auto",
  a v2 API that is absent is skipped silently, one that fails otherwise is skipped with a warning
  in the event log (the nodes and the v3 locks still show).
- with `airlock=True`: `com.coreos.airlock/groups/<g>/v1/semaphore` -> `LockState(kind="airlock")`
Only the locks come through the v2 API: node keys are v3 (coreroll agents write v3), so an etcd
without the v3 API shows as down. An explicit "v2" on an etcd that does not serve it shows as down
with a reason naming `--etcd-api v2` (`api_origin`), retried like any outage.

Each (re)connection sends one `EtcdSnapshot` (the model replaces all etcd-derived state with it, so
keys deleted while we were away vanish) followed by single updates. When etcd has compacted the
revision the watch should start from, the source lists again on the same connection (no "down").
`Connection("etcd", ...)` tells the model `connecting` / `connected` / `down` (with the reason). A
health probe (a Status call every `probe_interval` s, `probe_timeout` s to answer) notices a dead,
hung or partitioned etcd even when the watch stream stays silent.
No Textual here: a UI runs `run()` in a worker and drains the sink.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdCompactedError, EtcdError, V2ApiMissingError
from coreroll.etcd.port import EtcdKV, WatchEvent, open_kv
from coreroll.locks.airlock import parse_airlock
from coreroll.locks.auto import v2_missing
from coreroll.locks.keys import group_from_key, is_semaphore_key
from coreroll.locks.semaphore import SemaphoreFormatError, parse_semaphore
from coreroll.watch import updates as u
from coreroll.watch.backoff import Backoff
from coreroll.watch.source_loop import ReconnectingSource
from coreroll.watch.views import CONNECTED, CONNECTING, DOWN
from coreroll.wire.keys import (
    AIRLOCK_PREFIX,
    AUDIT_PREFIX,
    COMMANDS_PREFIX,
    LOCK_PREFIX,
    NODES_PREFIX,
    STATUS_LEAF,
    parse_airlock_key,
    parse_audit_key,
    parse_command_key,
    parse_node_key,
)

SOURCE = "etcd"
MAX_RELISTS = 3  # in a row on one connection, before we call it an outage and back off


def airlock_state(key: str, raw: bytes | None) -> u.LockState | None:
    """`com.coreos.airlock/groups/<g>/v1/semaphore` -> LockState; None for other airlock keys."""
    group = parse_airlock_key(key)
    if group is None:
        return None
    if raw is None:
        return u.LockState(group, "airlock", key, removed=True)
    try:
        sem = parse_airlock(raw, key)
    except SemaphoreFormatError as exc:
        return u.LockState(group, "airlock", key, error=str(exc))
    return u.LockState(group, "airlock", key, sem.available, sem.total_slots, tuple(sorted(sem.holders)))


def locksmith_state(key: str, raw: bytes | None, kind: str = "v3") -> u.LockState | None:
    """A locksmith semaphore key -> LockState (error names the key); None for other keys."""
    if not is_semaphore_key(key):
        return None
    group = group_from_key(key)
    if raw is None:
        return u.LockState(group, kind, key, removed=True)
    try:
        sem = parse_semaphore(raw, key)
    except SemaphoreFormatError as exc:
        return u.LockState(group, kind, key, error=str(exc))
    return u.LockState(group, kind, key, sem.semaphore, sem.max, tuple(sem.holders))


def key_update(key: str, raw: bytes | None, *, airlock: bool = False) -> u.Update | None:
    """The update for one v3 key's new value (`raw is None`: deleted), or None if not ours."""
    if key.startswith(NODES_PREFIX):
        node = parse_node_key(key)
        if node is None:
            return None
        if node.leaf == STATUS_LEAF:
            return u.NodeStatus(node.machine_id, key, raw)
        return u.NodeAlive(node.machine_id, raw is not None)
    if key.startswith(COMMANDS_PREFIX):
        command = parse_command_key(key)
        return u.NodeCommand(command[0], command[1], key, raw) if command is not None else None
    if key.startswith(AUDIT_PREFIX):
        record_id = parse_audit_key(key)
        return u.AuditRecord(record_id, key, raw) if record_id is not None and raw is not None else None
    if key.startswith(LOCK_PREFIX):
        return locksmith_state(key, raw)
    if airlock and key.startswith(AIRLOCK_PREFIX):
        return airlock_state(key, raw)
    return None


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc).strip():
        return "etcd did not answer in time"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


class EtcdSource(ReconnectingSource):
    """See the module docstring. `revision` is the last etcd revision delivered."""

    source_name = SOURCE

    def __init__(
        self,
        config: EtcdConfig,
        sink: u.Sink,
        *,
        airlock: bool = False,
        audit_limit: int = 200,
        probe_interval: float = 1.0,
        probe_timeout: float = 3.0,
        page_size: int = 1000,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        api_origin: str = "--etcd-api v2",
    ) -> None:
        self.config = config
        self.api_origin = api_origin
        self.sink = sink
        self.airlock = airlock
        self.audit_limit = audit_limit
        self.probe_interval = probe_interval
        # a busy etcd/server may take a few seconds to answer; interval + timeout stays under the
        # 5 s in which the header must say a source is gone
        self.probe_timeout = probe_timeout
        self.page_size = page_size
        self.backoff = backoff or Backoff(0.2, 3.0)
        self.clock = clock
        self.revision = 0
        self.resyncs = 0  # full listings delivered (1 + reconnections + compactions)
        self.compactions = 0  # relists because the watch's start revision was compacted
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._v3_locks = config.api in ("v3", "auto")
        self._v2_locks = config.api in ("v2", "auto")
        self._v2_problem: str | None = None  # the last v2 error "auto" worked around, noted once
        self._stopped = False

    @property
    def prefixes(self) -> list[str]:
        prefixes = [NODES_PREFIX, COMMANDS_PREFIX, AUDIT_PREFIX]
        if self._v3_locks:
            prefixes.append(LOCK_PREFIX)
        if self.airlock:
            prefixes.append(AIRLOCK_PREFIX)
        return prefixes

    async def _cycle(self) -> None:
        """One connection: connect, list, follow until something breaks; report why."""
        self._state(CONNECTING, ", ".join(self.config.endpoints))
        client: EtcdKV | None = None
        lock_store: Any = None
        try:
            client = await open_kv(self.config, "v3")
            relists = 0
            while True:
                if lock_store is not None:
                    await lock_store.close()
                snapshot = await self._list(client)
                if self._v2_locks:
                    lock_store, lock_snapshot = await self._list_v2_locks()
                    if lock_store is not None:
                        snapshot = _with_locks(snapshot, lock_snapshot, "v2")
                self.revision = snapshot.revision
                self.sink(snapshot)
                self.resyncs += 1
                self._state(CONNECTED, client.endpoint)
                self.backoff.reset()
                try:
                    await self._follow(client, snapshot.revision, lock_store)
                except EtcdCompactedError:
                    # etcd compacted the history we wanted to watch from: etcd is fine, list
                    # again and carry on
                    self.compactions += 1
                    relists += 1
                    if relists > MAX_RELISTS:
                        raise ConnectionError(
                            "etcd keeps refusing to watch from the listed revision"
                        ) from None
        except asyncio.CancelledError:
            raise
        except V2ApiMissingError as exc:
            self._state(DOWN, v2_missing(exc, self.api_origin))
        except Exception as exc:
            self._state(DOWN, describe(exc))
        finally:
            if lock_store is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(lock_store.close(), 2.0)
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 2.0)

    async def _list(self, client: EtcdKV) -> u.EtcdSnapshot:
        """Every watched prefix at one revision (the first reply's), for a consistent picture."""
        revision = 0
        found: list[u.Update] = []
        for prefix in self.prefixes:
            newest = self.audit_limit if prefix == AUDIT_PREFIX else None  # the log is unbounded
            listing = await client.get_prefix(prefix, revision=revision, newest=newest, page=self.page_size)
            revision = revision or listing.revision
            for kv in listing.kvs:
                update = key_update(kv.key, kv.value, airlock=self.airlock)
                if update is not None:
                    found.append(update)
        return u.EtcdSnapshot(
            revision=revision,
            statuses=tuple(x for x in found if isinstance(x, u.NodeStatus)),
            alive=frozenset(x.machine_id for x in found if isinstance(x, u.NodeAlive)),
            commands=tuple(x for x in found if isinstance(x, u.NodeCommand)),
            locks=tuple(x for x in found if isinstance(x, u.LockState)),
            audit=tuple(x for x in found if isinstance(x, u.AuditRecord)),
            lock_kinds=frozenset({"v3"} if self._v3_locks else set())
            | ({"airlock"} if self.airlock else set()),
        )

    async def _list_v2_locks(self) -> tuple[Any, list[u.LockState]]:
        """The v2 lock store (to watch) and its groups; (None, []) when "auto" finds no v2 API."""
        from coreroll.locks import open_lock_store

        store = open_lock_store(dataclasses.replace(self.config, api="v2"))
        try:
            states = await store.group_states()
        except V2ApiMissingError:
            await store.close()
            if self.config.api == "auto":
                return None, []  # etcd without v2 (3.4+ default, 3.6): the locks are v3 only
            raise
        except (EtcdError, TimeoutError, OSError) as exc:
            await store.close()
            if self.config.api != "auto":
                raise
            # auto: the nodes and the v3 locks still show; say once why v2's are missing
            problem = describe(exc)
            if problem != self._v2_problem:
                self._v2_problem = problem
                self.sink(
                    u.Note(
                        f"etcd's v2 API could not be read ({problem}): reboot locks from v3 only",
                        "warning",
                        "Locks",
                    )
                )
            return None, []
        except BaseException:
            await store.close()
            raise
        return store, [_v2_state(s) for s in states.values()]

    async def _follow(self, client: EtcdKV, revision: int, lock_store: Any) -> None:
        """Deliver watch events until a watch or the probe fails (raises) or we are cancelled."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        watches = []
        for prefix in self.prefixes:
            watch = await asyncio.wait_for(client.watch_prefix(prefix, revision + 1), self.config.timeout)
            watches.append(watch)
        tasks = [asyncio.create_task(_pump(w, queue)) for w in watches]
        tasks.append(asyncio.create_task(self._probe(client, queue)))
        if lock_store is not None:
            tasks.append(asyncio.create_task(_pump_v2(lock_store, queue)))
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, u.LockState):
                    self.sink(item)
                    continue
                assert isinstance(item, WatchEvent)
                self.revision = max(self.revision, item.mod_revision)
                update = key_update(item.key, item.value, airlock=self.airlock)
                if update is not None:
                    self.sink(update)
        finally:
            for task in tasks:
                task.cancel()
            for watch in watches:
                await watch.cancel()

    async def _probe(self, client: EtcdKV, queue: asyncio.Queue[Any]) -> None:
        """A Status call every `probe_interval`: a silent watch cannot tell us etcd is gone."""
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                await asyncio.wait_for(client.status(), self.probe_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"no reply to a status check within {self.probe_timeout:g} s"
                if not isinstance(exc, TimeoutError):
                    reason = describe(exc)
                await queue.put(ConnectionError(f"etcd stopped answering ({reason})"))
                return


async def _pump(watch: Any, queue: asyncio.Queue[Any]) -> None:
    try:
        async for event in watch:
            await queue.put(event)
        await queue.put(ConnectionError("etcd closed the watch"))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await queue.put(exc)


async def _pump_v2(store: Any, queue: asyncio.Queue[Any]) -> None:
    try:
        async for state in store.watch():
            await queue.put(_v2_state(state))
        await queue.put(ConnectionError("etcd closed the v2 watch"))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await queue.put(exc)


def _v2_state(state: Any) -> u.LockState:
    key = "/" + state.key
    if state.error:
        return u.LockState(state.group, "v2", key, error=state.error)
    if state.semaphore is None:
        return u.LockState(state.group, "v2", key, removed=True)
    sem = state.semaphore
    return u.LockState(state.group, "v2", key, sem.semaphore, sem.max, tuple(sem.holders))


def _with_locks(snapshot: u.EtcdSnapshot, locks: list[u.LockState], kind: str) -> u.EtcdSnapshot:
    from dataclasses import replace

    return replace(snapshot, locks=snapshot.locks + tuple(locks), lock_kinds=snapshot.lock_kinds | {kind})
