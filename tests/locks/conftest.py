from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.locks import LockStore, open_lock_store


@pytest.fixture(params=["v3", "v2"])
def api(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def config(clean_etcd: str, api: str) -> EtcdConfig:
    return EtcdConfig(endpoints=(clean_etcd,), api=api, timeout=3.0)


@pytest.fixture
async def store(config: EtcdConfig) -> AsyncIterator[LockStore]:
    lock_store = open_lock_store(config)
    yield lock_store
    await lock_store.close()
