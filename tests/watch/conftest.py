"""Fixtures for the watch tests: an etcd of our own that a test may stop and restart, a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.v3 import connect_v3
from coreroll.omaha.payload import generate_private_key, write_keypair
from coreroll.server.runner import RunningServer, run_server_in_thread
from coreroll.server.settings import ServerSettings


@pytest.fixture
def own_etcd() -> Iterator[EmbeddedEtcd]:
    """A separate etcd (not the session one): tests stop and restart it."""
    with EmbeddedEtcd() as server:
        yield server


@pytest.fixture
async def v3(clean_etcd: str) -> AsyncIterator[object]:
    client = await connect_v3(EtcdConfig(endpoints=(clean_etcd,)))
    yield client
    await client.close()


_KEY = None


def start_server(data_dir: Path, **extra: object) -> RunningServer:
    """A real update server (uvicorn in a thread, 127.0.0.1, free port) on SQLite in `data_dir`."""
    global _KEY
    keys = data_dir / "keys"
    if not keys.exists():
        if _KEY is None:  # RSA-2048 generation is slow: once per session
            _KEY = generate_private_key()
        write_keypair(keys, _KEY)
    settings = ServerSettings(data_dir=data_dir, db_url=f"sqlite:///{data_dir / 'server.db'}", **extra)  # type: ignore[arg-type]
    return run_server_in_thread(settings)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "server")
    yield running
    running.stop()
