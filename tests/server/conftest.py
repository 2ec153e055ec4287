"""Server test fixtures: a real server (uvicorn on 127.0.0.1, free port) on a real database.

``db_url`` is parametrized: SQLite in the test's temp dir, and PostgreSQL when
COREROLL_TEST_POSTGRES holds a server URL (a fresh database per test; .ci/postgres starts one when
the machine has the binaries). Without it the PostgreSQL variants are skipped, saying why.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from coreroll.omaha.payload import generate_private_key, write_keypair
from coreroll.server.runner import RunningServer, run_server_in_thread
from coreroll.server.settings import ServerSettings

PG_ENV = "COREROLL_TEST_POSTGRES"


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


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'server.db'}"
        return
    admin_url = os.environ.get(PG_ENV)
    if not admin_url:
        pytest.skip(
            f"PostgreSQL variant: set {PG_ENV}=postgresql://... (.ci/postgres starts one if installed)"
        )
    name = f"coreroll_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(admin_url, f"CREATE DATABASE {name}"))
    try:
        yield _with_database(admin_url, name)
    finally:
        asyncio.run(_pg(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


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
    """The server on each database (SQLite always; PostgreSQL when configured)."""
    running = start(tmp_path, db_url)
    yield running
    running.stop()


@pytest.fixture
def sqlite_server(tmp_path: Path, sqlite_url: str) -> Iterator[RunningServer]:
    running = start(tmp_path, sqlite_url)
    yield running
    running.stop()
