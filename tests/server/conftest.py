"""Server test fixtures: a real server (uvicorn on 127.0.0.1, free port) on a real database.

``db_url`` is parametrized: SQLite in the test's temp dir, and PostgreSQL (a fresh database per
test on the session's server: the ``postgres_url`` fixture, COREROLL_TEST_POSTGRES or our own).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreroll.omaha.payload import generate_private_key, write_keypair
from coreroll.server.runner import RunningServer, run_server_in_thread
from coreroll.server.settings import ServerSettings


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the session's server, dropped after the test."""
    name = f"coreroll_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(postgres_url, f"CREATE DATABASE {name}"))
    try:
        yield _with_database(postgres_url, name)
    finally:
        asyncio.run(_pg(postgres_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


# The PostgreSQL variants are slow: the first one starts a PostgreSQL server (initdb: seconds).
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return str(request.getfixturevalue("pg_url"))  # PostgreSQL starts only when a test needs it


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'server.db'}"


_KEY = generate_private_key()  # RSA-2048 generation takes ~0.5 s: once per session, not per server


def start(tmp_path: Path, db: str, **extra: object) -> RunningServer:
    keys = tmp_path / "data" / "keys"
    if not keys.exists():
        write_keypair(keys, _KEY)
    return run_server_in_thread(ServerSettings(data_dir=tmp_path / "data", db_url=db, **extra))  # type: ignore[arg-type]


@pytest.fixture
def server(tmp_path: Path, db_url: str) -> Iterator[RunningServer]:
    """The server on each database (SQLite and PostgreSQL)."""
    running = start(tmp_path, db_url)
    yield running
    running.stop()


@pytest.fixture
def sqlite_server(tmp_path: Path, sqlite_url: str) -> Iterator[RunningServer]:
    running = start(tmp_path, sqlite_url)
    yield running
    running.stop()
