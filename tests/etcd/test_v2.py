"""V2Client against the real etcd's /v2/keys: the calls locksmith makes, errors, watch, TLS, failover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdUnavailableError
from coreroll.etcd.v2 import COMPARE_FAILED, KEY_NOT_FOUND, NODE_EXIST, V2Client, V2KeyError
from tests.etcd.conftest import TlsEtcd

pytestmark = pytest.mark.slow


@pytest.fixture
async def v2(clean_etcd: str) -> AsyncIterator[V2Client]:
    async with V2Client(EtcdConfig(endpoints=(clean_etcd,), api="v2")) as client:
        yield client


async def test_create_get_cas_delete(v2: V2Client) -> None:
    created = await v2.create("/a/b", '{"x":1}')
    assert created.action == "create" and created.node.value == '{"x":1}'
    with pytest.raises(V2KeyError) as exists:
        await v2.create("/a/b", "again")
    assert exists.value.code == NODE_EXIST
    index = created.node.modified_index
    swapped = await v2.put("/a/b", "2", prev_index=index)
    assert swapped.node.modified_index > index and swapped.prev_node and swapped.prev_node.value == '{"x":1}'
    with pytest.raises(V2KeyError) as stale:
        await v2.put("/a/b", "3", prev_index=index)
    assert stale.value.code == COMPARE_FAILED and stale.value.key.startswith("[")
    assert (await v2.get("/a/b")).node.value == "2"
    with pytest.raises(V2KeyError):
        await v2.delete("/a/b", prev_index=index)
    await v2.delete("/a/b", prev_index=swapped.node.modified_index)
    with pytest.raises(V2KeyError) as missing:
        await v2.get("/a/b")
    assert missing.value.code == KEY_NOT_FOUND and missing.value.key == "/a/b"


async def test_keys_with_escapes_are_stored_literally(v2: V2Client) -> None:
    await v2.put("/g/a%2Fb+c%25/semaphore", "v")
    listing = await v2.get("/g", recursive=True)
    assert listing.node.nodes[0].key == "/g/a%2Fb+c%25"  # one directory, not a/b


async def test_recursive_get(v2: V2Client) -> None:
    await v2.put("/r/x/1", "one")
    await v2.put("/r/y", "two")
    tree = await v2.get("/r", recursive=True)
    assert sorted((n.key, n.value) for n in tree.node.walk()) == [("/r/x/1", "one"), ("/r/y", "two")]
    assert tree.etcd_index >= max(n.modified_index for n in tree.node.walk())


async def test_watch_with_wait_index(v2: V2Client) -> None:
    first = await v2.put("/w/k", "1")
    await v2.put("/w/k", "2")
    past = await v2.watch("/w/k", wait_index=first.node.modified_index)
    assert past.node.value == "1"  # history from waitIndex on
    waiting = asyncio.create_task(v2.watch("/w", wait_index=first.node.modified_index + 2, recursive=True))
    put = await v2.put("/w/other", "3")
    event = await asyncio.wait_for(waiting, 5)
    # The watch waited for the first change at or after waitIndex: the put made after it started.
    assert (event.action, event.node.key, event.node.value) == ("set", "/w/other", "3")
    assert event.node.modified_index == put.node.modified_index == first.node.modified_index + 2


async def test_failover_and_unavailable(clean_etcd: str) -> None:
    async with V2Client(EtcdConfig(endpoints=("http://127.0.0.1:9", clean_etcd), api="v2")) as client:
        await client.put("/f", "1")
        assert client.endpoint == clean_etcd
    async with V2Client(
        EtcdConfig(endpoints=("http://127.0.0.1:9", "http://127.0.0.1:7"), api="v2")
    ) as client:
        with pytest.raises(EtcdUnavailableError, match=r"tried: http://127.0.0.1:9,http://127.0.0.1:7 \("):
            await client.get("/f")


async def test_tls_ca_only_and_client_cert(tls_etcd: TlsEtcd, mtls_etcd: TlsEtcd) -> None:
    async with V2Client(
        EtcdConfig(endpoints=(tls_etcd.url,), api="v2", cafile=str(tls_etcd.pki.ca))
    ) as client:
        await client.put("/tls", "ok")
        assert (await client.get("/tls")).node.value == "ok"
    pki = mtls_etcd.pki
    mtls = EtcdConfig(
        endpoints=(mtls_etcd.url,),
        api="v2",
        cafile=str(pki.ca),
        certfile=str(pki.client_cert),
        keyfile=str(pki.client_key),
    )
    async with V2Client(mtls) as client:
        await client.put("/mtls", "ok")
        assert (await client.get("/mtls")).node.value == "ok"
