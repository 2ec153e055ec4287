"""Helpers shared by the engine and agent tests (no tests here): a real update server in a thread,
publishing, polling, a connected etcd client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aetcd
import httpx
import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.v3 import connect_v3


async def wait_for(
    predicate: Callable[[], Any] | Callable[[], Awaitable[Any]],
    *,
    within: float = 10.0,
    interval: float = 0.01,
    what: str = "condition",
) -> Any:
    """Poll `predicate` every `interval` s until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


@pytest.fixture
def update_server(tmp_path: Path) -> Iterator[Any]:
    """The real coreroll update server (uvicorn, SQLite) on a free 127.0.0.1 port."""
    from coreroll.server.runner import run_server_in_thread
    from coreroll.server.settings import ServerSettings

    running = run_server_in_thread(ServerSettings(listen="127.0.0.1:0", data_dir=tmp_path / "server"))
    try:
        yield running
    finally:
        running.stop()


def server_public_key(data_dir: Path) -> Any:
    from coreroll.omaha.payload import load_public_key

    return load_public_key(data_dir / "keys" / "update-payload-key.pub.pem")


def admin(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=10)


def publish_synthetic(
    server: Any, version: str, channel: str = "stable", image_size: int = 4096
) -> dict[str, Any]:
    with admin(server) as client:
        reply = client.post(
            "/api/v1/releases",
            json={"version": version, "synthetic": True, "channel": channel, "image_size": image_size},
        )
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def publish_file(server: Any, version: str, data: bytes, channel: str = "stable") -> dict[str, Any]:
    """Publish bytes the server stores unverified (`opaque=true`): it only hashes them."""
    with admin(server) as client:
        reply = client.post(
            "/api/v1/releases",
            params={"version": version, "channel": channel, "filename": "update.gz", "opaque": "true"},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def download(url: str) -> bytes:
    reply = httpx.get(url, timeout=10)
    reply.raise_for_status()
    return reply.content


def instance(server: Any, machine_id: str) -> dict[str, Any] | None:
    reply = httpx.get(f"{server.url}/api/v1/instances/{machine_id}", timeout=10)
    if reply.status_code == 404:
        return None
    reply.raise_for_status()
    return dict(reply.json())


@pytest.fixture
async def etcd_client(clean_etcd: str) -> AsyncIterator[aetcd.Client]:
    client = await connect_v3(EtcdConfig(endpoints=(clean_etcd,), timeout=3.0))
    try:
        yield client
    finally:
        await client.close()
