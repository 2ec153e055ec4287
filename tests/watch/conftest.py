"""Fixtures for the watch tests: an etcd of our own that a test may stop and restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.etcd.v3 import connect_v3


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
