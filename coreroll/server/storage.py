"""Storage: the async engine, schema creation/versioning, write transactions and the change log.

``Storage(url, clock)``; ``await storage.start()`` creates the schema or upgrades an older one
(the Alembic revisions in ``coreroll.server.migrations``; a newer one is refused) and
``await storage.close()``. URLs: ``sqlite:///path.db`` (WAL, synchronous=NORMAL: a committed write
survives kill -9 of the server) or ``postgresql://user@host/db`` (asyncpg). A SQLite database is
served by one process at a time: ``start()`` takes ``<db>.lock`` (``SqliteLock``) and refuses with
a ``StorageError`` naming the pid that holds it; several servers share only a PostgreSQL database.

Writes go through ``async with storage.write() as tx:``. One writer at a time in this process; on
PostgreSQL a transaction-scoped advisory lock also orders writers of other processes, so change
ids commit in increasing order and a feed reader that has seen id N never later finds a smaller
one. ``await storage.write_batched(job)`` queues ``job(tx)`` into a shared transaction (group
commit): under load many small writes share one commit, and each caller still returns only after
its write committed. ``tx.emit(kind, obj)`` appends to the change log in the same transaction; ``tx.activity(...)``
records an activity and emits it. After commit, feed waiters are woken
(``await storage.wait_for_change(after, timeout)``) and ``tx.after_commit`` callbacks run (cache
updates happen only for committed data).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from coreroll.server import migrations, schema
from coreroll.server.records import activity_json
from coreroll.server.sqlite_lock import DatabaseInUse, SqliteLock

T = TypeVar("T")
log = logging.getLogger("coreroll.server.storage")
BATCH_MAX = 256  # jobs per group-commit transaction
_ADVISORY_LOCK = 7_263_001  # arbitrary constant shared by every coreroll server on one database


class StorageError(RuntimeError):
    """The database cannot be used (bad URL, newer schema, unreachable)."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for an in-memory database or another kind of URL)."""
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix) :].split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def async_url(url: str) -> str:
    """``sqlite:///x`` -> ``sqlite+aiosqlite:///x``; ``postgresql://`` / ``postgres://`` -> asyncpg."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise StorageError(f"--db {url!r}: expected sqlite:///PATH or postgresql://USER@HOST/DB")


# One executemany without RETURNING: with RETURNING in parameter order SQLAlchemy sends SQLite one
# INSERT per row, each a round trip through aiosqlite's thread and the event loop (a 200-row
# retention batch took 1-4 s under full load, holding the write lock all along).
_INSERT_CHANGES = insert(schema.changes)
_LAST_CHANGE = select(func.max(schema.changes.c.id))


class Tx:
    """One write transaction: ``conn`` plus the change log, deferred bulk writes and post-commit hooks.

    ``emit`` and ``defer`` only queue rows; ``flush()`` (run by ``Storage.write`` just before the
    commit) writes each queue with one executemany, so a group-commit batch of N registrations is a
    handful of statements, not 2N.
    """

    def __init__(self, conn: AsyncConnection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.last_change_id = 0
        self.after_commit: list[Callable[[], object]] = []  # results ignored
        self._changes: list[dict[str, Any]] = []
        self._deferred: dict[Any, list[dict[str, Any]]] = {}

    def emit(self, kind: str, obj: dict[str, Any]) -> None:
        self._changes.append({"kind": kind, "data": json.dumps(obj, separators=(",", ":")), "at": self.now})

    def defer(self, statement: Any, row: dict[str, Any]) -> None:
        """Run ``statement`` with ``row`` at flush time (rows of one statement go in one executemany)."""
        self._deferred.setdefault(statement, []).append(row)

    async def flush(self) -> None:
        deferred, self._deferred = self._deferred, {}
        for statement, rows in deferred.items():
            await self.conn.execute(statement, rows)
        if self._changes:
            changes, self._changes = self._changes, []
            await self.conn.execute(_INSERT_CHANGES, changes)
            # Writers take turns (the write lock; on PostgreSQL also the advisory lock) until they
            # commit, so the newest id in the table is this transaction's last change.
            self.last_change_id = int((await self.conn.execute(_LAST_CHANGE)).scalar_one())

    async def activity(
        self,
        kind: str,
        severity: str,
        message: str,
        *,
        group: str | None = None,
        channel: str | None = None,
        version: str | None = None,
        instance: str | None = None,
    ) -> dict[str, Any]:
        row = {
            "at": self.now,
            "kind": kind,
            "severity": severity,
            "group_id": group,
            "channel": channel,
            "version": version,
            "instance": instance,
            "message": message,
        }
        result = await self.conn.execute(insert(schema.activity).values(**row))
        assert result.inserted_primary_key is not None  # an INSERT of one row has one
        obj = activity_json({"id": int(result.inserted_primary_key[0]), **row})
        self.emit("activity", obj)
        return obj


class Storage:
    def __init__(self, url: str, clock: Callable[[], float]) -> None:
        self.url = async_url(url)
        self.clock = clock
        self.is_sqlite = self.url.startswith("sqlite")
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(self.url, pool_size=8, max_overflow=8)
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(self.url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        self._write_lock = asyncio.Lock()
        self._pending: list[tuple[Callable[[Tx], Awaitable[Any]], asyncio.Future[Any]]] = []
        self._batcher: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.head = 0  # last change id committed (by this process, or seen on start)
        # Moves when a write transaction other than a batch of instance writes ends (committed or
        # not): what was derived from the in-memory catalog before it may be stale.
        self.generation = 0
        # The largest id an Integer primary key holds: SQLite's INTEGER is 64-bit, PostgreSQL's
        # SERIAL 32-bit. Ids a client sends (Last-Event-ID, ?after=) are refused past it.
        self.max_id = 2**63 - 1 if self.is_sqlite else 2**31 - 1
        self._file_lock: SqliteLock | None = None

    async def start(self) -> None:
        db_file = sqlite_path(self.url)
        if db_file is None or self._file_lock is not None:
            await self._open()
            return
        try:
            self._file_lock = SqliteLock.take(db_file)
        except DatabaseInUse as exc:
            raise StorageError(str(exc)) from None
        except OSError as exc:
            raise StorageError(f"cannot open database {db_file}: {exc}") from exc
        try:
            await self._open()
        except BaseException:
            self._file_lock.release()  # a server that did not start does not keep the database
            self._file_lock = None
            raise

    async def _open(self) -> None:
        try:
            await self._migrate()
            self.head = await self.current_head()
        except StorageError:
            raise
        except (migrations.NewerSchema, migrations.UnknownSchema) as exc:
            raise StorageError(str(exc)) from None
        except Exception as exc:  # unreachable PostgreSQL, unwritable file, a failed revision, ...
            raise StorageError(f"cannot open database {self.url.split('@')[-1]}: {exc}") from exc

    async def _migrate(self) -> migrations.Upgrade:
        """Create or upgrade the schema (``coreroll.server.migrations``) in one transaction.

        PostgreSQL: DDL is transactional; the advisory lock every writer takes makes a second server
        starting at the same time wait, then find the head. SQLite: the driver would commit before
        DDL, so the connection runs in autocommit and issues BEGIN IMMEDIATE / COMMIT itself.
        """
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.begin()
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})"))
            try:
                done = await conn.run_sync(migrations.upgrade, self.clock())
            except BaseException:
                if self.is_sqlite:
                    with contextlib.suppress(Exception):  # SQLite may have rolled back already
                        await conn.exec_driver_sql("ROLLBACK")
                await conn.rollback()
                raise
            if self.is_sqlite:
                await conn.exec_driver_sql("COMMIT")
            await conn.commit()
            return done

    async def close(self) -> None:
        await self.engine.dispose()
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None

    @asynccontextmanager
    async def write(self, *, instances_only: bool = False) -> AsyncIterator[Tx]:
        """``instances_only``: the transaction writes instance rows only (``write_batched``), so it
        leaves ``generation`` alone."""
        async with self._write_lock:
            try:
                async with self.engine.begin() as conn:
                    if not self.is_sqlite:
                        await conn.execute(text(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})"))
                    tx = Tx(conn, self.clock())
                    yield tx
                    await tx.flush()
                # Committed. Caches are updated while still holding the lock, so the next writer
                # never decides on state older than the database.
                for callback in tx.after_commit:
                    callback()
                if tx.last_change_id:
                    self.head = max(self.head, tx.last_change_id)
                    self._changed.set()
                    self._changed = asyncio.Event()
            finally:
                if not instances_only:
                    self.generation += 1

    async def write_batched(self, job: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``job(tx)`` in a transaction shared with other queued jobs (group commit).

        Returns once that transaction committed. For independent small writes (an instance
        re-registering); a job must not depend on caches other jobs of the batch change.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        if self._batcher is None or self._batcher.done():
            self._batcher = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            jobs, self._pending = self._pending[:BATCH_MAX], self._pending[BATCH_MAX:]
            results: list[Any] = []
            try:
                async with self.write(instances_only=True) as tx:
                    for job, _future in jobs:
                        results.append(await job(tx))
            except Exception:
                # One bad job must not fail the others: run each on its own.
                for job, future in jobs:
                    try:
                        async with self.write(instances_only=True) as tx:
                            result = await job(tx)
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(result)
                continue
            for (_job, future), result in zip(jobs, results, strict=True):
                if not future.done():
                    future.set_result(result)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def wait_for_change(self, after: int, wait_seconds: float) -> None:
        """Return when a change newer than ``after`` was committed here, or after ``wait_seconds``."""
        if self.head > after:
            return
        waiter = self._changed
        try:
            await asyncio.wait_for(waiter.wait(), wait_seconds)
        except TimeoutError:
            pass

    async def current_head(self) -> int:
        async with self.read() as conn:
            found = (await conn.execute(select(func.coalesce(func.max(schema.changes.c.id), 0)))).scalar_one()
        self.head = max(self.head, int(found))
        return int(found)

    async def changes_after(self, after: int, limit: int = 500) -> list[tuple[int, str, str]]:
        async with self.read() as conn:
            rows = await conn.execute(
                select(schema.changes.c.id, schema.changes.c.kind, schema.changes.c.data)
                .where(schema.changes.c.id > after)
                .order_by(schema.changes.c.id)
                .limit(limit)
            )
            return [(int(r.id), r.kind, r.data) for r in rows]

    async def oldest_change(self) -> int:
        async with self.read() as conn:
            return int(
                (await conn.execute(select(func.coalesce(func.min(schema.changes.c.id), 0)))).scalar_one()
            )

    async def prune_changes(self, keep: int, limit: int) -> int:
        """Delete up to ``limit`` of the oldest changes, keeping the newest ``keep``; returns how
        many were deleted (a caller loops while that is ``limit``: each call is one short write)."""
        oldest = await self.oldest_change()
        async with self.write() as tx:
            cutoff = min(self.head - keep, oldest + limit - 1)
            if cutoff < oldest:
                return 0
            result = await tx.conn.execute(schema.changes.delete().where(schema.changes.c.id <= cutoff))
            return int(result.rowcount or 0)

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()
