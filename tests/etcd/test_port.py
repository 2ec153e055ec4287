"""The EtcdKV port: one contract, run against every backend in BACKENDS on a real etcd.

A new backend is one module in coreroll/etcd/ and one line in BACKENDS; this file then runs it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.errors import EtcdCompactedError, EtcdUnavailableError
from coreroll.etcd.port import BACKENDS, EtcdKV, WatchEvent, open_kv

pytestmark = pytest.mark.slow  # real etcd / one process per case: several seconds together
DEAD = "http://127.0.0.1:9"
V3_BACKENDS = [name for name in BACKENDS if name.startswith("v3")]


def config_for(backend: str, endpoint: str, **extra: object) -> EtcdConfig:
    api = "v2" if backend == "v2" else "v3"
    transport = "gateway" if backend == "v3-gateway" else "grpc"
    return dataclasses.replace(
        EtcdConfig(endpoints=(endpoint,), timeout=3.0), api=api, v3_transport=transport, **extra
    )


@pytest.fixture(params=list(BACKENDS))
async def kv(request: pytest.FixtureRequest, clean_etcd: str) -> AsyncIterator[EtcdKV]:
    port = await open_kv(config_for(request.param, clean_etcd))
    try:
        yield port
    finally:
        await port.close()


def test_open_kv_imports_only_the_backend_asked_for() -> None:
    import subprocess
    import sys

    code = (
        "import asyncio, sys\n"
        "from coreroll.etcd.config import EtcdConfig\n"
        "from coreroll.etcd.port import open_kv\n"
        "config = EtcdConfig(endpoints=('http://127.0.0.1:9',), timeout=0.5, v3_transport='gateway')\n"
        "try:\n    asyncio.run(open_kv(config))\nexcept Exception:\n    pass\n"
        "print(sorted(m for m in ('grpc', 'aetcd', 'httpx') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_put_get_delete(kv: EtcdKV) -> None:
    assert isinstance(kv, EtcdKV)
    revision = await kv.put("port/a", b"1")
    got = await kv.get("port/a")
    assert got is not None and got.value == b"1" and got.key == "port/a" and got.mod_revision == revision
    assert await kv.get("port/missing") is None
    assert await kv.delete("port/a") is True
    assert await kv.get("port/a") is None
    assert await kv.delete("port/a") is False


async def test_prefix_listing_is_sorted_and_newest_takes_the_last(kv: EtcdKV) -> None:
    for name in ("c", "a", "b", "d"):
        await kv.put(f"port/list/{name}", name.encode())
    await kv.put("port/listother", b"x")  # shares the text prefix but not the directory
    listing = await kv.get_prefix("port/list/")
    assert [item.key for item in listing.kvs] == [f"port/list/{n}" for n in "abcd"]
    assert listing.revision >= max(item.mod_revision for item in listing.kvs)
    newest = await kv.get_prefix("port/list/", newest=2)
    assert [item.value for item in newest.kvs] == [b"c", b"d"]
    assert (await kv.get_prefix("port/none/")).kvs == []


async def test_prefix_listing_spans_pages(kv: EtcdKV) -> None:
    # more keys than one page: every page after the first asks for the same page size
    for n in range(7):
        await kv.put(f"port/paged/{n}", str(n).encode())
    listing = await kv.get_prefix("port/paged/", page=2)
    assert [item.value for item in listing.kvs] == [str(n).encode() for n in range(7)]


async def test_compare_and_swap(kv: EtcdKV) -> None:
    created = await kv.compare_and_swap("port/cas", b"first", 0)
    assert created.ok
    again = await kv.compare_and_swap("port/cas", b"other", 0)
    assert not again.ok  # create-only: it exists
    stale = await kv.compare_and_swap("port/cas", b"x", created.revision + 1000)
    assert not stale.ok
    if kv.api == "v3":  # v3 tells who won; v2 cannot
        assert stale.current is not None and stale.current.value == b"first"
    swapped = await kv.compare_and_swap("port/cas", b"second", created.revision)
    assert swapped.ok and swapped.revision > created.revision
    got = await kv.get("port/cas")
    assert got is not None and got.value == b"second"


async def test_lease_keeps_a_key_until_revoked(kv: EtcdKV) -> None:
    lease = await kv.grant_lease(30)
    await kv.put("port/alive", b"yes", lease=lease)
    assert await kv.keep_lease_alive(lease) > 0
    assert (await kv.get("port/alive")) is not None
    await kv.revoke_lease(lease)
    assert await kv.get("port/alive") is None
    assert await kv.keep_lease_alive(lease) == 0


async def test_watch_from_a_revision_sees_puts_and_deletes(kv: EtcdKV) -> None:
    start = await kv.put("port/w/before", b"0")
    await kv.put("port/elsewhere", b"-")
    watch = await kv.watch_prefix("port/w/", start)
    seen: list[WatchEvent] = []

    async def collect() -> None:
        async for event in watch:
            seen.append(event)
            if len(seen) == 3:
                return

    task = asyncio.create_task(collect())
    await kv.put("port/w/x", b"1")
    await kv.delete("port/w/before")
    await asyncio.wait_for(task, 10)
    await watch.cancel()
    assert [(e.kind, e.key, e.value) for e in seen] == [
        ("put", "port/w/before", b"0"),
        ("put", "port/w/x", b"1"),
        ("delete", "port/w/before", None),
    ]


async def test_status_names_the_endpoint_and_version(kv: EtcdKV) -> None:
    status = await kv.status()
    assert status.version.startswith("3.")
    assert status.endpoint.rstrip("/").endswith(kv.endpoint.rsplit("//", 1)[-1].rstrip("/"))


@pytest.mark.parametrize("backend", V3_BACKENDS)
async def test_watch_on_compacted_history_says_so(backend: str, clean_etcd: str) -> None:
    kv = await open_kv(config_for(backend, clean_etcd))
    try:
        first = await kv.put("port/c", b"1")
        last = await kv.put("port/c", b"2")
        import httpx

        compact = {"revision": last, "physical": True}
        await asyncio.to_thread(httpx.post, f"{clean_etcd}/v3/kv/compaction", json=compact, timeout=5)
        with pytest.raises(EtcdCompactedError):
            watch = await kv.watch_prefix("port/", first)
            async for _ in watch:
                break
    finally:
        await kv.close()


@pytest.mark.parametrize("backend", list(BACKENDS))
async def test_unreachable_names_the_endpoints(backend: str) -> None:
    with pytest.raises(EtcdUnavailableError, match=r"127\.0\.0\.1:9"):
        kv = await open_kv(config_for(backend, DEAD))
        try:
            await kv.get("x")
        finally:
            await kv.close()
