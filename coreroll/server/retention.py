"""Retention: the background task that keeps the database from growing for ever (Nebraska #1585).

Every ``settings.prune_interval_seconds`` one run:

1. trims the feed's change log to the newest ``settings.feed_retention`` changes;
2. forgets instances not seen for ``settings.forget_instances_after`` (``Registry.forget``: with
   their history, and a feed event ``{"machine_id": ..., "deleted": true}`` each). One in the middle
   of an update (``registry.MID_UPDATE``) is never forgotten, however long it is silent;
3. deletes instance history and activity recorded more than ``settings.keep_activity`` ago.

A setting of 0 turns its part off. Update checks come first: everything is deleted in batches of
at most ``BATCH`` rows, each in its own short write transaction, and the task then rests for
``REST_FACTOR`` times as long as the batch took (``rest_after``: at least ``MIN_REST``, at most
``MAX_REST`` seconds), so a backlog of millions of rows drains in the background while checks keep
their latency (bench/omaha.py measures it). The cap: under full load a 200-row batch took 1-4 s by
the clock (each of its database round trips waits behind the checks), and resting twice that put
the purge to sleep through whole 5-s bench runs. Rows to delete are found on a read connection,
outside the write lock; old history and activity are found from their oldest ids (time order), so
no run scans those tables whole.

``Retention(settings, storage, registry, metrics)``: ``await run_once()`` -> ``RetentionRun``
(counts of one run), ``await run_forever(stopping)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sqlalchemy import Table, delete, select

from coreroll.server import schema
from coreroll.server.metrics import Metrics
from coreroll.server.registry import Registry, forgettable
from coreroll.server.settings import ServerSettings, flag_duration
from coreroll.server.storage import Storage

log = logging.getLogger("coreroll.server.retention")
BATCH = 200  # rows per write transaction
SCAN = 20_000  # instance ids found per read (one scan of the table, not one per batch)
MIN_REST = 0.002  # seconds between batches, at least
MAX_REST = 0.5  # seconds between batches, at most
REST_FACTOR = 2.0  # rest twice as long as a batch took: the task holds the write lock <= 1/3 of the time


def rest_after(busy: float) -> float:
    """Seconds to rest after a batch that took ``busy`` seconds."""
    return min(MAX_REST, max(MIN_REST, busy * REST_FACTOR))


@dataclass
class RetentionRun:
    changes: int = 0
    instances: int = 0
    history: int = 0
    activity: int = 0


class Retention:
    def __init__(
        self, settings: ServerSettings, storage: Storage, registry: Registry, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.registry = registry
        self.metrics = metrics
        self._stopping = asyncio.Event()

    async def run_forever(self, stopping: asyncio.Event) -> None:
        self._stopping = stopping
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.settings.prune_interval_seconds)
            if stopping.is_set():
                return
            try:
                await self.run_once()
            except Exception:  # a busy or unreachable database must not end the task: next run
                self.metrics.retention_failures.inc()
                log.exception("retention run failed; retrying in %g s", self.settings.prune_interval_seconds)

    async def run_once(self) -> RetentionRun:
        started = time.monotonic()
        settings = self.settings
        now = settings.clock()
        done = RetentionRun()
        done.changes = await self._trim_changes()
        if settings.forget_instances_after:
            done.instances, done.history = await self._forget(now - settings.forget_instances_after)
        if settings.keep_activity:
            before = now - settings.keep_activity
            done.history += await self._delete_older(schema.instance_history, before, now)
            done.activity = await self._delete_older(schema.activity, before, now)
        self.metrics.retention_last_run.set(time.time())
        self.metrics.retention_run_seconds.set(time.monotonic() - started)
        if done.instances or done.history or done.activity:
            log.info(
                "retention: forgot %d instances not seen for %s; deleted %d history and %d activity rows",
                done.instances, flag_duration(settings.forget_instances_after), done.history, done.activity,
            )  # fmt: skip
        return done

    async def _rest(self, busy: float) -> None:
        """Leave the write lock to update checks for a while (returns at once when stopping)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), rest_after(busy))

    async def _trim_changes(self) -> int:
        deleted = 0
        while not self._stopping.is_set():
            started = time.monotonic()
            count = await self.storage.prune_changes(self.settings.feed_retention, BATCH)
            deleted += count
            if not count:
                return deleted
            await self._rest(time.monotonic() - started)
        return deleted

    async def _forget(self, cutoff: float) -> tuple[int, int]:
        i = schema.instances
        forgotten = history = 0
        while not self._stopping.is_set():
            async with self.storage.read() as conn:
                found = list(
                    (
                        await conn.execute(select(i.c.machine_id).where(forgettable(cutoff)).limit(SCAN))
                    ).scalars()
                )
            for start in range(0, len(found), BATCH):
                if self._stopping.is_set():
                    break
                began = time.monotonic()
                gone, rows = await self.registry.forget(found[start : start + BATCH], cutoff)
                forgotten += len(gone)
                history += rows
                self.metrics.retention_forgotten.inc(len(gone))
                self.metrics.retention_history.inc(rows)
                await self._rest(time.monotonic() - began)
            if len(found) < SCAN:
                break
        return forgotten, history

    async def _delete_older(self, table: Table, before: float, now: float) -> int:
        """Delete the rows of ``table`` (``id``, ``at``) recorded before ``before``, walking ids up
        from the oldest and stopping at the first batch of recent rows: ids grow with time, so a run
        reads only the old rows and one batch more. Rows stamped in the future (a clock that was
        wrong) are stepped over, so they never hold back the deletion of older ones."""
        counter = (
            self.metrics.retention_history
            if table is schema.instance_history
            else self.metrics.retention_activity
        )
        deleted = cursor = 0
        while not self._stopping.is_set():
            async with self.storage.read() as conn:
                query = (
                    select(table.c.id, table.c.at)
                    .where(table.c.id > cursor)
                    .order_by(table.c.id)
                    .limit(BATCH)
                )
                rows = (await conn.execute(query)).all()
            if not rows:
                break
            cursor = rows[-1].id
            old = [row.id for row in rows if row.at < before]
            if not old:
                if any(row.at <= now for row in rows):
                    break  # only recent rows from here on
                continue
            began = time.monotonic()
            async with self.storage.write() as tx:
                result = await tx.conn.execute(delete(table).where(table.c.id.in_(old), table.c.at < before))
            count = int(result.rowcount or 0)
            deleted += count
            counter.inc(count)
            await self._rest(time.monotonic() - began)
        return deleted
