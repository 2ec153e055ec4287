"""The instance registry: one row per machine id, its status history, and the rollout stats.

``Instance`` is the in-memory form of a row. ``Registry(storage, stale_window, cache)``:
``await get(machine_id)`` reads the committed state (from an in-memory copy when ``cache`` is on,
which is safe only when this process is the database's one writer, i.e. SQLite);
``await unchanged(tx, machine_id, seen)`` tells, inside a write transaction, whether the committed
row is still the ``seen`` one (PostgreSQL: ``SELECT ... FOR UPDATE``, as other server processes
may have written it); a write decided from an older state must be redone from the current one.
``await save(tx, inst, history)`` upserts the row, appends history entries and emits the feed
event; the cache is updated after commit. ``await stats(conn, group, version, policy, now)``
computes ``RolloutStats``; ``await all_on_version(...)`` tells whether a rollout finished.
Read API helpers: ``list(...)``, ``history(...)``, ``status_counts()``.
Retention: ``forgettable(cutoff)`` is the SQL condition "not seen since ``cutoff`` and not in the
middle of an update" (``MID_UPDATE``); ``await forget(machine_ids, cutoff)`` deletes those of
``machine_ids`` that still match it, with their history, in one transaction, and tells the feed.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, insert, not_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from coreroll.omaha.codes import InstanceStatus
from coreroll.server import schema
from coreroll.server.policy import Policy, RolloutStats
from coreroll.server.records import history_json, instance_json, stored_errorcode
from coreroll.server.storage import Storage, Tx

ACTIVE_WINDOW = 86400.0
_INSERT_HISTORY = insert(schema.instance_history)
ANONYMOUS_PREFIX = "anon-"  # keys of requests with machineid="" (omaha_handler, lifecycle)
LOAD_BATCH = 500  # rollout stats and "finished" only count instances seen within a day
# Granted and not yet finished or failed: the statuses that set update_in_progress (lifecycle), the
# ones the policy counts as in flight. Such a machine is never forgotten, however long it is silent.
MID_UPDATE = frozenset(
    {
        InstanceStatus.UpdateGranted,
        InstanceStatus.Downloading,
        InstanceStatus.Downloaded,
        InstanceStatus.Installed,
    }
)


def forgettable(cutoff: float) -> ColumnElement[bool]:
    """Instances last seen before ``cutoff`` that are not in the middle of an update. An anonymous
    machine's Installed boot record is done (lifecycle.apply_event): its next boot is another record."""
    i = schema.instances
    anonymous_done = and_(
        i.c.status == int(InstanceStatus.Installed),
        i.c.machine_id.startswith(ANONYMOUS_PREFIX, autoescape=True),
    )
    return and_(
        i.c.last_check < cutoff,
        i.c.update_in_progress.is_(False),
        or_(i.c.status.not_in(sorted(int(s) for s in MID_UPDATE)), anonymous_done),
    )


@dataclass(slots=True)
class Instance:
    machine_id: str
    ip: str = ""
    version: str = ""
    track: str = ""
    group_id: str | None = None
    status: int = InstanceStatus.Undefined
    status_reason: str | None = None
    last_check: float = 0.0
    last_update_version: str | None = None
    last_update_granted_at: float | None = None
    update_in_progress: bool = False
    oem: str = ""
    oemversion: str = ""
    alephversion: str = ""
    board: str = ""
    bootid: str = ""
    created_at: float = 0.0

    def row(self) -> dict[str, Any]:
        return dict(zip(_FIELDS, _ALL(self), strict=True))

    def same_state(self, other: Instance) -> bool:
        """Equal in everything but ``last_check`` (the hot path's "nothing changed")."""
        return _STATE(self) == _STATE(other)

    def copy(self) -> Instance:
        return Instance(*_ALL(self))


_FIELDS = tuple(f.name for f in fields(Instance))
_ALL = attrgetter(*_FIELDS)  # C-speed field access: these run on every update check
_STATE = attrgetter(*(f for f in _FIELDS if f != "last_check"))


@dataclass(slots=True)
class HistoryEntry:
    status: int
    version: str
    reason: str | None = None
    event_type: int | None = None
    event_result: int | None = None
    errorcode: int | None = None


class Registry:
    def __init__(self, storage: Storage, stale_window: float, cache: bool) -> None:
        self.storage = storage
        self.stale_window = stale_window
        self.cache_enabled = cache
        self._cache: dict[str, Instance] = {}
        self._wanted: dict[str, list[asyncio.Future[Instance | None]]] = {}
        self._loader: asyncio.Task[None] | None = None
        # Machines forgotten while the loader's current read runs (None: no read running).
        self._forgotten_meanwhile: set[str] | None = None
        self.count = 0
        i = schema.instances
        dialect = sqlite if storage.is_sqlite else postgresql
        stmt = dialect.insert(i)
        self._upsert = stmt.on_conflict_do_update(
            index_elements=[i.c.machine_id],
            set_={c: stmt.excluded[c] for c in _FIELDS if c not in ("machine_id", "created_at")},
        )

    async def load_count(self) -> None:
        async with self.storage.read() as conn:
            self.count = int(
                (await conn.execute(select(func.count()).select_from(schema.instances))).scalar_one()
            )

    def cached(self, machine_id: str) -> Instance | None:
        """The cached committed state (SQLite), or None: not cached, ask ``get``. No coroutine on a hit."""
        return self._cache.get(machine_id) if self.cache_enabled else None

    async def get(self, machine_id: str) -> Instance | None:
        """The committed state of one instance. Misses are loaded in batches: concurrent update
        checks of uncached machines share one ``WHERE machine_id IN (...)`` query."""
        if self.cache_enabled:
            cached = self._cache.get(machine_id)
            if cached is not None:
                return cached
        future: asyncio.Future[Instance | None] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(machine_id, []).append(future)
        if self._loader is None or self._loader.done():
            self._loader = asyncio.create_task(self._load())
        return await future

    async def _load(self) -> None:
        i = schema.instances
        while self._wanted:
            batch = dict(itertools.islice(self._wanted.items(), LOAD_BATCH))
            for machine_id in batch:
                del self._wanted[machine_id]
            self._forgotten_meanwhile = forgotten = set()
            try:
                async with self.storage.read() as conn:
                    rows = await conn.execute(select(i).where(i.c.machine_id.in_(list(batch))))
                    found = {r.machine_id: Instance(**r._mapping) for r in rows}
            except Exception as exc:
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            finally:
                self._forgotten_meanwhile = None
            for machine_id in forgotten:  # deleted since this read began: it must not come back
                found.pop(machine_id, None)
            for machine_id, futures in batch.items():
                inst = found.get(machine_id)
                if inst is not None and self.cache_enabled:
                    # A write that committed meanwhile wins over what this read saw.
                    inst = self._cache.setdefault(machine_id, inst)
                for future in futures:
                    if not future.done():
                        future.set_result(inst)

    async def unchanged(self, tx: Tx, machine_id: str, seen: Instance | None) -> bool:
        """True when the row of ``machine_id`` is still ``seen`` (None: still absent) in ``tx``."""
        if self.cache_enabled:
            # The one writer: the cache is replaced (never mutated) at every commit, under the
            # write lock, so the object read earlier is still there exactly when nothing changed.
            return self._cache.get(machine_id) is seen
        i = schema.instances
        row = (await tx.conn.execute(select(i).where(i.c.machine_id == machine_id).with_for_update())).first()
        return (None if row is None else Instance(**row._mapping)) == seen

    async def save(
        self, tx: Tx, inst: Instance, history: list[HistoryEntry], is_new: bool, defer: bool = False
    ) -> dict[str, Any]:
        """Upsert ``inst`` and append ``history``; ``defer`` batches the rows into the commit's flush
        (only for transactions that read nothing back about this instance)."""
        row = inst.row()
        history_rows = [
            {
                "machine_id": inst.machine_id,
                "at": tx.now,
                "status": h.status,
                "version": h.version,
                "reason": h.reason,
                "event_type": h.event_type,
                "event_result": h.event_result,
                "errorcode": stored_errorcode(h.errorcode),
            }
            for h in history
        ]
        if defer:
            tx.defer(self._upsert, row)
            for entry in history_rows:
                tx.defer(_INSERT_HISTORY, entry)
        else:
            await tx.conn.execute(self._upsert, row)
            if history_rows:
                await tx.conn.execute(_INSERT_HISTORY, history_rows)
        obj = instance_json(row, tx.now, self.stale_window)
        tx.emit("instance", obj)
        snapshot = inst.copy()

        def apply() -> None:
            if self.cache_enabled:
                self._cache[snapshot.machine_id] = snapshot
            if is_new:
                self.count += 1

        tx.after_commit.append(apply)
        return obj

    async def forget(self, machine_ids: list[str], cutoff: float) -> tuple[list[str], int]:
        """Delete the instances of ``machine_ids`` still ``forgettable(cutoff)`` (one that checked in
        meanwhile stays) and their history; returns (forgotten ids, history rows deleted)."""
        i, h = schema.instances, schema.instance_history
        async with self.storage.write() as tx:
            result = await tx.conn.execute(
                delete(i)
                .where(i.c.machine_id.in_(machine_ids), forgettable(cutoff))
                .returning(i.c.machine_id)
            )
            gone = list(result.scalars())
            history = 0
            if gone:
                history = (await tx.conn.execute(delete(h).where(h.c.machine_id.in_(gone)))).rowcount or 0
                for machine_id in gone:
                    tx.emit("instance", {"machine_id": machine_id, "deleted": True})

            def apply() -> None:
                for machine_id in gone:
                    self._cache.pop(machine_id, None)
                self.count -= len(gone)
                if self._forgotten_meanwhile is not None:
                    self._forgotten_meanwhile.update(gone)

            tx.after_commit.append(apply)
        return gone, int(history)

    async def stats(
        self, conn: AsyncConnection, group_id: str, version: str, policy: Policy, now: float
    ) -> RolloutStats:
        i = schema.instances
        granted = i.c.last_update_granted_at
        in_progress = i.c.update_in_progress.is_(True)
        timeout_start = now - policy.update_timeout_seconds

        def count(condition: Any) -> Any:
            return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

        query = select(
            count(granted >= now - policy.period_seconds),
            count(and_(in_progress, granted >= timeout_start)),
            count(and_(in_progress, granted < timeout_start)),
            count(i.c.last_update_version == version),
            count(and_(i.c.version == version, i.c.status == int(InstanceStatus.Complete))),
        ).where(i.c.group_id == group_id, granted.is_not(None), i.c.last_check >= now - ACTIVE_WINDOW)
        row = (await conn.execute(query)).one()
        return RolloutStats(*(int(v) for v in row))

    async def all_on_version(self, conn: AsyncConnection, group_id: str, version: str, now: float) -> bool:
        i = schema.instances
        # An anonymous machine's record of the boot that installed ``version`` (Installed, no longer
        # in progress: lifecycle.apply_event) is on it too: that machine's next boot is another record.
        installed = and_(
            i.c.status == int(InstanceStatus.Installed),
            i.c.update_in_progress.is_(False),
            func.coalesce(i.c.last_update_version, "") == version,  # never NULL: NOT NULL would drop rows
        )
        query = (
            select(i.c.machine_id)
            .where(
                i.c.group_id == group_id,
                i.c.last_check >= now - ACTIVE_WINDOW,
                i.c.version != version,
                not_(installed),
            )
            .limit(1)
        )
        return (await conn.execute(query)).first() is None

    # ---- read API ----------------------------------------------------------------------------
    async def list(
        self,
        *,
        now: float,
        group: str | None = None,
        status: int | None = None,
        track: str | None = None,
        version: str | None = None,
        stale: bool | None = None,
        forgettable_before: float | None = None,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Instances by ``machine_id``; ``after`` (a keyset cursor) starts past that machine id, so
        pages stay exact while machines register meanwhile. ``total`` ignores ``after``.
        ``forgettable_before``: only those ``forgettable`` with that cutoff."""
        i = schema.instances
        where = []
        if group is not None:
            where.append(i.c.group_id == group)
        if status is not None:
            where.append(i.c.status == status)
        if track is not None:
            where.append(i.c.track == track)
        if version is not None:
            where.append(i.c.version == version)
        if stale is not None:
            cutoff = now - self.stale_window
            where.append(i.c.last_check < cutoff if stale else i.c.last_check >= cutoff)
        if forgettable_before is not None:
            where.append(forgettable(forgettable_before))
        async with self.storage.read() as conn:
            total = (await conn.execute(select(func.count()).select_from(i).where(*where))).scalar_one()
            if after is not None:
                where.append(i.c.machine_id > after)
            rows = await conn.execute(
                select(i).where(*where).order_by(i.c.machine_id).limit(limit).offset(offset)
            )
            items = [instance_json(r._mapping, now, self.stale_window) for r in rows]
        return items, int(total)

    async def one(self, machine_id: str, now: float) -> dict[str, Any] | None:
        i = schema.instances
        async with self.storage.read() as conn:
            row = (await conn.execute(select(i).where(i.c.machine_id == machine_id))).first()
        return None if row is None else instance_json(row._mapping, now, self.stale_window)

    async def history(self, machine_id: str, limit: int = 100) -> list[dict[str, Any]]:
        h = schema.instance_history
        async with self.storage.read() as conn:
            rows = await conn.execute(
                select(h).where(h.c.machine_id == machine_id).order_by(h.c.id.desc()).limit(limit)
            )
            return [history_json(r._mapping) for r in rows]

    async def status_counts(self) -> list[tuple[str | None, int, int]]:
        i = schema.instances
        async with self.storage.read() as conn:
            rows = await conn.execute(
                select(i.c.group_id, i.c.status, func.count()).group_by(i.c.group_id, i.c.status)
            )
            return [(r[0], int(r[1]), int(r[2])) for r in rows]
