"""Schema migrations (Alembic, coreroll/server/migrations): old databases upgrade with nothing lost,
the head matches schema.py, a newer database is refused, two servers migrate once, a kill mid-way
leaves the old database whole."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Connection, Integer, MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine

from coreroll.server import migrations, schema
from coreroll.server.migrations.pause import PAUSE_VARIABLE
from coreroll.server.runner import ServerProcess, spawn_server_process, wait_until_healthy
from coreroll.server.storage import Storage, StorageError, async_url
from tests.server.conftest import start
from tests.server.legacy import LEGACY_TABLES, V2_TABLES, make_legacy, snapshot

HEAD = "v4"


def _legacy_tables(version: int) -> tuple[str, ...]:
    return LEGACY_TABLES + (V2_TABLES if version >= 2 else ())


async def _on_sync_connection(url: str, job: Any) -> Any:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(job)
    finally:
        await engine.dispose()


def _schema_differences(url: str, metadata: MetaData = schema.metadata) -> list[Any]:
    def compare(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    return asyncio.run(_on_sync_connection(url, compare))


def _revision(url: str) -> list[str]:
    def heads(conn: Connection) -> list[str]:
        return list(MigrationContext.configure(conn).get_current_heads())

    return asyncio.run(_on_sync_connection(url, heads))


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(sql))]
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _start_storage(url: str) -> None:
    storage = Storage(url, lambda: 5000.0)
    try:
        await storage.start()
    finally:
        await storage.close()


def _without_new_columns(after: dict[str, list[Any]], before: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """``after``'s rows restricted to the columns ``before`` had (upgrades add columns)."""
    kept: dict[str, list[Any]] = {}
    for table, rows in after.items():
        old = {name for row in before[table] for name, _ in row}
        kept[table] = sorted((tuple(item for item in row if item[0] in old) for row in rows), key=repr)
    return kept


def test_revisions_are_one_line_named_v1_to_vn() -> None:
    script = migrations.script_directory()
    revisions = {r.revision: r.down_revision for r in script.walk_revisions()}
    numbers = sorted(migrations.revision_number(r) for r in revisions)
    assert numbers == list(range(1, len(numbers) + 1))
    assert all(revisions[f"v{n}"] == (f"v{n - 1}" if n > 1 else None) for n in numbers)
    assert script.get_current_head() == HEAD


def test_the_head_revision_is_what_schema_py_describes(db_url: str) -> None:
    """A schema change in schema.py without a revision fails here (on SQLite and PostgreSQL)."""
    asyncio.run(_start_storage(db_url))
    assert _schema_differences(db_url) == []
    assert _revision(db_url) == [HEAD]
    changed = MetaData()
    for table in schema.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["instances"].append_column(Column("forgotten_at", Integer, nullable=True))
    assert [d[0] for d in _schema_differences(db_url, changed)] == ["add_column"]  # what it would catch


@pytest.mark.parametrize("version", [1, 2])
def test_a_legacy_database_upgrades_with_nothing_lost(
    tmp_path: Path, db_url: str, version: int, caplog: pytest.LogCaptureFixture
) -> None:
    make_legacy(db_url, version)
    tables = _legacy_tables(version)
    before = snapshot(db_url, tables)
    caplog.set_level(logging.INFO, "coreroll.server.migrations")
    asyncio.run(_start_storage(db_url))
    revisions = ", ".join(f"v{n}" for n in range(version + 1, 5))
    assert f"database schema upgraded from version {version} to 4 (revisions {revisions})" in caplog.text
    after = snapshot(db_url, tables)
    assert after["schema_version"] == before["schema_version"] + [(("applied_at", 5000.0), ("version", 4))]
    del after["schema_version"], before["schema_version"]
    assert _without_new_columns(after, before) == before
    assert _revision(db_url) == [HEAD]
    assert _schema_differences(db_url) == []  # on SQLite too: v3 rebuilt releases with a BIGINT size
    if version == 2:
        assert {dict(r)["url"] for r in snapshot(db_url, ("release_files",))["release_files"]} == {None}

    caplog.clear()
    asyncio.run(_start_storage(db_url))  # at the head: nothing runs
    assert "upgraded" not in caplog.text and _query(db_url, "SELECT count(*) FROM schema_version") == [
        (version + 1,)
    ]

    server = start(tmp_path, db_url)  # what the operator sees is all there
    try:
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"})
        instances = client.get("/api/v1/instances").json()
        assert sorted(i["machine_id"] for i in instances["instances"]) == ["a" * 32, "b" * 32, "c" * 32]
        assert client.get("/api/v1/groups/beta").json()["policy"]["updates_enabled"] is False
        channels = {c["name"]: c["version"] for c in client.get("/api/v1/channels").json()["channels"]}
        assert (channels["stable"], channels["beta"]) == ("4000.0.0", "4001.0.0")
        messages = [a["message"] for a in client.get("/api/v1/activity").json()["activity"]]
        assert "update failed ✗" in messages and "stable -> 4000.0.0" in messages
        releases = {r["version"]: r for r in client.get("/api/v1/releases").json()["releases"]}
        assert releases["4001.0.0"]["payloads"][0]["size"] == 2_147_483_000
        history = client.get(f"/api/v1/instances/{'b' * 32}").json()["history"]
        assert len(history) == 2
    finally:
        server.stop()


def test_a_database_from_a_newer_server_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    asyncio.run(_start_storage(url))
    _execute(url, "UPDATE alembic_version SET version_num = 'v5'")
    with pytest.raises(StorageError, match=r"database schema revision v5 is newer than this server's \(v4\)"):
        asyncio.run(_start_storage(url))

    legacy = f"sqlite:///{tmp_path / 'legacy.db'}"  # a pre-Alembic table saying 5: no server made it
    make_legacy(legacy, 2)
    _execute(legacy, "INSERT INTO schema_version (version, applied_at) VALUES (5, 1.0)")
    with pytest.raises(StorageError, match=r"database schema version 5 is newer than this server's \(4\)"):
        asyncio.run(_start_storage(legacy))
    assert "alembic_version" not in {r[0] for r in _query(legacy, "SELECT name FROM sqlite_master")}


def _execute(url: str, sql: str) -> None:
    async def run() -> None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(run())


# --- real server processes, paused inside a migration ------------------------------------------


@pytest.fixture
def pause_socket() -> Iterator[tuple[str, socket.socket]]:
    """A Unix socket the test-only migration hook connects to (short path: sun_path is ~107 bytes)."""
    directory = tempfile.mkdtemp(prefix="coreroll-pause-")
    path = os.path.join(directory, "pause.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(60)
    try:
        yield path, listener
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)


def _spawn_paused(
    data_dir: Path, url: str, pause: tuple[str, socket.socket]
) -> tuple[ServerProcess, socket.socket]:
    """A server process stopped right after revision v3 ran, its transaction open."""
    path, listener = pause
    server = spawn_server_process(data_dir, url, env={PAUSE_VARIABLE: f"v3 {path}"})
    try:
        conn, _ = listener.accept()  # waits (60 s at most) for the server to reach the pause
    except TimeoutError:
        server.kill()
        raise AssertionError((data_dir / "server.log").read_text()[-2000:]) from None
    conn.settimeout(30)
    assert conn.makefile("r").readline() == "paused after v3\n"
    return server, conn


def _upgrade_lines(*servers: ServerProcess) -> int:
    return sum(
        (s.data_dir / "server.log").read_text().count("database schema upgraded from version 2 to 4")
        for s in servers
    )


@pytest.mark.slow
def test_a_server_killed_mid_migration_leaves_the_old_database_and_restarts_cleanly(
    tmp_path: Path, db_url: str, pause_socket: tuple[str, socket.socket]
) -> None:
    make_legacy(db_url, 2)
    before = snapshot(db_url, _legacy_tables(2))
    server, conn = _spawn_paused(tmp_path / "a", db_url, pause_socket)
    server.process.send_signal(signal.SIGKILL)  # v3 ran (the releases table rebuilt / retyped), uncommitted
    server.process.wait(timeout=10)
    conn.close()

    assert snapshot(db_url, _legacy_tables(2)) == before
    assert _revision(db_url) == []  # no alembic_version: still what the version 2 server left
    if db_url.startswith("sqlite"):
        names = {
            r[0]
            for r in _query(
                db_url, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        assert names == set(_legacy_tables(2))  # no half-built _alembic_tmp_releases
    else:
        size_type = "SELECT data_type FROM information_schema.columns WHERE table_name = 'releases' AND column_name = 'size'"
        assert _query(db_url, size_type) == [("integer",)]

    again = spawn_server_process(tmp_path / "b", db_url)
    try:
        wait_until_healthy(again)
        assert _upgrade_lines(again) == 1
        assert _revision(db_url) == [HEAD]
        after = snapshot(db_url, _legacy_tables(2))
        assert _without_new_columns(after, before)["instances"] == before["instances"]
        total = httpx.get(f"{again.url}/api/v1/instances", headers={"Authorization": "Bearer test-token"})
        assert total.json()["total"] == 3
    finally:
        again.stop()


@pytest.mark.slow
def test_two_servers_starting_at_once_on_postgresql_migrate_exactly_once(
    tmp_path: Path, pg_url: str, pause_socket: tuple[str, socket.socket]
) -> None:
    make_legacy(pg_url, 2)
    first, conn = _spawn_paused(tmp_path / "a", pg_url, pause_socket)
    second = spawn_server_process(tmp_path / "b", pg_url)
    try:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        deadline = time.monotonic() + 30
        while _query(pg_url, waiting) != [(1,)]:  # the second server waits for the first's migration
            assert second.process.poll() is None, (second.data_dir / "server.log").read_text()
            assert time.monotonic() < deadline, "the second server never waited on the migration lock"
            time.sleep(0.05)
        conn.sendall(b"go")
        conn.close()
        wait_until_healthy(first)
        wait_until_healthy(second)
        assert _upgrade_lines(first, second) == 1
        assert "database schema upgraded" in (first.data_dir / "server.log").read_text()
        assert _revision(pg_url) == [HEAD]
        assert _query(pg_url, "SELECT version FROM schema_version ORDER BY version") == [(1,), (2,), (4,)]
        for server in (first, second):
            answer = httpx.get(
                f"{server.url}/api/v1/instances", headers={"Authorization": "Bearer test-token"}
            )
            assert answer.json()["total"] == 3
    finally:
        first.stop()
        second.stop()
