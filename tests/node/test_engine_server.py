"""The update engine against the real update server and real signed payloads: the happy path,
tampered payloads, a rollback, and the server going away during a check or a download."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from coreroll.node.clock import ScaledClock
from coreroll.node.engine import CheckOutcome, EngineSnapshot, EngineTimings, NodeIdentity, UpdateEngine
from coreroll.node.faultproxy import FaultProxy
from coreroll.node.partitions import Disk
from coreroll.omaha.payload import generate_private_key
from tests.node.test_engine_support import (
    instance,
    publish_synthetic,
    server_public_key,
    update_server,
    wait_for,
)

pytestmark = pytest.mark.slow

__all__ = ["update_server"]

MACHINE = "0123456789abcdef0123456789abcdef"
FAST = EngineTimings(
    first_check=60,
    first_check_fuzz=0,
    interval=45 * 60,
    interval_fuzz=0,
    retry_initial=60,
    retry_max=4 * 3600,
    download_retry_initial=30,
    download_retry_max=120,
)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def node_disk(state: Path) -> Disk:
    if not Disk.exists(state):
        Disk.create(state, "1.0.0", b"image 1.0.0", fsync=False)
    return Disk(state, fsync=False)


def make_engine(
    state: Path,
    server_url: str,
    public_key: Any,
    http: httpx.AsyncClient,
    *,
    boot_id: str = "{boot-1}",
    on_change: Callable[[EngineSnapshot], None] | None = None,
    **kwargs: Any,
) -> UpdateEngine:
    return UpdateEngine(
        disk=node_disk(state),
        state_dir=state,
        server_url=f"{server_url}/v1/update/",
        track="stable",
        identity=NodeIdentity(MACHINE, boot_id),
        clock=kwargs.pop("clock", None) or ScaledClock(1000),
        http=http,
        public_key=public_key,
        timings=kwargs.pop("timings", FAST),
        on_change=on_change,
        **kwargs,
    )


def table(disk: Disk) -> list[Any]:
    return [(p.label, p.version, p.priority, p.tries, p.successful) for p in Disk(disk.state_dir).table()]


def history(server: Any) -> list[dict[str, Any]]:
    found = instance(server, MACHINE)
    return list(found["history"]) if found else []


def set_when_staged(done: asyncio.Event) -> Callable[[EngineSnapshot], None]:
    """An engine on_change that sets ``done`` once the update waits for the reboot."""

    def on_change(snapshot: EngineSnapshot) -> None:
        if snapshot.status == "UPDATE_STATUS_UPDATED_NEED_REBOOT":
            done.set()

    return on_change


async def test_update_reaches_need_reboot_then_pings_and_completes_after_the_reboot(
    tmp_path: Path, update_server: Any, http: httpx.AsyncClient
) -> None:
    seen: list[str] = []
    publish_synthetic(update_server, "1.0.0", image_size=1024)  # the running version
    key = server_public_key(update_server.settings.data_dir)  # made on the first publish
    engine = make_engine(tmp_path, update_server.url, key, http, on_change=lambda s: seen.append(s.status))
    assert await engine.check_once() is CheckOutcome.NO_UPDATE
    publish_synthetic(update_server, "2.0.0", image_size=64 * 1024)

    assert await engine.check_once() is CheckOutcome.UPDATED
    assert engine.status == "UPDATE_STATUS_UPDATED_NEED_REBOOT"
    statuses = list(dict.fromkeys(seen))
    assert statuses == [
        "UPDATE_STATUS_CHECKING_FOR_UPDATE",
        "UPDATE_STATUS_IDLE",
        "UPDATE_STATUS_UPDATE_AVAILABLE",
        "UPDATE_STATUS_DOWNLOADING",
        "UPDATE_STATUS_VERIFYING",
        "UPDATE_STATUS_FINALIZING",
        "UPDATE_STATUS_UPDATED_NEED_REBOOT",
    ]
    assert (engine.snapshot.new_version, engine.snapshot.progress) == ("2.0.0", 1.0)
    # flatcar-postinst: the new partition is next, with one try; the running one stays good.
    assert table(engine.disk) == [("USR-A", "1.0.0", 1, 0, 1), ("USR-B", "2.0.0", 2, 1, 0)]
    inst = instance(update_server, MACHINE)
    assert inst is not None and inst["status"] == "Installed"
    assert [h["event"] for h in inst["history"] if h["event"]][:3] == ["3/1", "14/1", "13/1"]

    # While waiting for the reboot only pings go out: the server sees the node, nothing changes.
    assert await engine.check_once() is CheckOutcome.PINGED
    assert engine.status == "UPDATE_STATUS_UPDATED_NEED_REBOOT"

    engine.disk.boot()  # GRUB takes USR-B
    after = make_engine(tmp_path, update_server.url, key, http, boot_id="{boot-2}")
    assert after.status == "UPDATE_STATUS_IDLE"
    assert await after.check_once() is CheckOutcome.NO_UPDATE  # carries 3/2 previousversion=1.0.0
    inst = instance(update_server, MACHINE)
    assert inst is not None and (inst["status"], inst["version"]) == ("Complete", "2.0.0")
    # It was marked good before the attempt (UpdateBootFlags) and the pref is reset.
    assert table(after.disk)[1] == ("USR-B", "2.0.0", 2, 0, 1)
    assert after.state.previous_version == ""


async def test_scheduled_run_checks_by_itself_and_marks_the_new_boot_good_after_45s(
    tmp_path: Path, update_server: Any, http: httpx.AsyncClient
) -> None:
    publish_synthetic(update_server, "2.0.0")
    key = server_public_key(update_server.settings.data_dir)
    done = asyncio.Event()
    engine = make_engine(
        tmp_path,
        update_server.url,
        key,
        http,
        on_change=set_when_staged(done),
    )
    task = asyncio.create_task(engine.run())
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [outcome for _, outcome in engine.attempts] == [CheckOutcome.UPDATED]
    state = json.loads((tmp_path / "update_engine.json").read_text())
    assert (state["current_operation"], state["new_version"]) == (
        "UPDATE_STATUS_UPDATED_NEED_REBOOT",
        "2.0.0",
    )

    engine.disk.boot()  # into USR-B: tries 1 -> 0, not yet successful
    assert table(engine.disk)[1] == ("USR-B", "2.0.0", 2, 0, 0)
    slow_checks = EngineTimings(first_check=3600, first_check_fuzz=0)
    after = make_engine(tmp_path, update_server.url, key, http, boot_id="{boot-2}", timings=slow_checks)
    task = asyncio.create_task(after.run())
    try:
        await wait_for(lambda: table(after.disk)[1] == ("USR-B", "2.0.0", 2, 0, 1), what="USR-B marked good")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not after.attempts  # marked good by the timer, not by a check


async def test_state_file_has_the_last_check_time_once_the_engine_stops(
    tmp_path: Path, update_server: Any, http: httpx.AsyncClient
) -> None:
    publish_synthetic(update_server, "1.0.0")
    key = server_public_key(update_server.settings.data_dir)
    often = EngineTimings(first_check=10, first_check_fuzz=0, interval=60, interval_fuzz=0)
    engine = make_engine(tmp_path, update_server.url, key, http, timings=often)
    task = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: len(engine.attempts) >= 3, what="3 checks")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    state = json.loads((tmp_path / "update_engine.json").read_text())
    assert state["last_checked_time"] == engine.state.last_checked_time > 0
    assert state["current_operation"] == "UPDATE_STATUS_IDLE"


def _flip(data: bytearray, at: int) -> bytes:
    data[at] ^= 0x01
    return bytes(data)


@pytest.mark.parametrize(
    ("tamper", "codes"),
    [
        # The server verifies every signed payload it is given, so tampering happens after publishing
        # (a disk or mirror corrupting the file) or on the node's side (it trusts another key).
        ("byte-flipped", {10}),  # same size, sha256 differs from the offer
        ("other-key", {18}),  # signed by the server's key, the node holds another one
        ("grown", {11}),
        ("truncated", {11}),
    ],
)
async def test_tampered_payload_is_refused_reported_and_the_partitions_kept(
    tmp_path: Path, update_server: Any, http: httpx.AsyncClient, tamper: str, codes: set[int]
) -> None:
    publish_synthetic(update_server, "2.0.0", image_size=8192)
    key = server_public_key(update_server.settings.data_dir)
    stored = update_server.settings.data_dir / "packages" / "2.0.0" / "amd64-usr" / "update.gz"
    data = bytearray(stored.read_bytes())
    if tamper == "byte-flipped":
        stored.write_bytes(_flip(data, 700))
    elif tamper == "grown":
        stored.write_bytes(bytes(data) + b"extra")
    elif tamper == "truncated":
        stored.write_bytes(bytes(data[:-100]))
    else:
        key = generate_private_key().public_key()

    engine = make_engine(tmp_path, update_server.url, key, http)
    before = table(engine.disk)
    assert await engine.check_once() is CheckOutcome.FAILED
    assert engine.status == "UPDATE_STATUS_IDLE"
    assert engine.snapshot.last_error in codes
    assert table(engine.disk) == before  # old partition kept, nothing written
    assert Disk(tmp_path).read_image("USR-A") == b"image 1.0.0"
    errors = [h for h in history(update_server) if h["event"] == "3/0"]
    assert errors and errors[0]["errorcode"] == engine.snapshot.last_error
    assert instance(update_server, MACHINE)["status"] == "Error"  # type: ignore[index]
    assert not (tmp_path / "payload.partial").exists()  # a refused payload is not kept


async def test_release_that_never_boots_rolls_back_and_reports_44(
    tmp_path: Path, update_server: Any, http: httpx.AsyncClient
) -> None:
    publish_synthetic(update_server, "2.0.0")
    key = server_public_key(update_server.settings.data_dir)
    engine = make_engine(tmp_path, update_server.url, key, http)
    assert await engine.check_once() is CheckOutcome.UPDATED
    disk = engine.disk
    assert disk.boot().label == "USR-B"  # tries 1 -> 0; 2.0.0 never comes up, never marked good
    assert disk.boot().label == "USR-A"  # tries exhausted: GRUB falls back
    assert table(disk) == [("USR-A", "1.0.0", 1, 0, 1), ("USR-B", "2.0.0", 2, 0, 0)]

    rolled_back = make_engine(tmp_path, update_server.url, key, http, boot_id="{boot-3}")
    await rolled_back.check_once()
    errors = [h for h in history(update_server) if h["event"] == "3/0"]
    assert errors and errors[0]["errorcode"] == 44
    assert instance(update_server, MACHINE)["status"] in ("Error", "UpdateGranted")  # type: ignore[index]


@pytest.fixture
async def proxy(update_server: Any) -> AsyncIterator[FaultProxy]:
    host, port = update_server.url.removeprefix("http://").split(":")
    fault = FaultProxy(host, int(port))
    await fault.start()
    try:
        yield fault
    finally:
        await fault.stop()


async def test_server_down_during_check_backs_off_doubling_and_touches_nothing(
    tmp_path: Path, update_server: Any, proxy: FaultProxy, http: httpx.AsyncClient
) -> None:
    publish_synthetic(update_server, "2.0.0")
    key = server_public_key(update_server.settings.data_dir)
    await proxy.cut()
    done = asyncio.Event()
    engine = make_engine(
        tmp_path,
        proxy.url,
        key,
        http,
        on_change=set_when_staged(done),
        clock=ScaledClock(300),  # slower, so real-time overhead stays small against the delays
    )
    before = table(engine.disk)
    task = asyncio.create_task(engine.run())
    try:
        await wait_for(lambda: len(engine.attempts) >= 3, what="3 failed checks")
        await proxy.restore()
        await asyncio.wait_for(done.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    failed = [t for t, outcome in engine.attempts if outcome is CheckOutcome.UNREACHABLE]
    assert len(failed) >= 3
    gaps = [b - a for a, b in itertools.pairwise(failed)]
    # retry_initial 60 s, doubling, +-10 % jitter: ~60, then ~120 clock seconds apart.
    assert 54 <= gaps[0] < 80 and 108 <= gaps[1] < 150, gaps
    assert table(engine.disk) != before  # only once the server answered
    assert engine.attempts[-1][1] is CheckOutcome.UPDATED


async def test_server_down_mid_download_retries_and_resumes_with_range(
    tmp_path: Path, update_server: Any, proxy: FaultProxy, http: httpx.AsyncClient
) -> None:
    release = publish_synthetic(update_server, "2.0.0", image_size=1024 * 1024)
    key = server_public_key(update_server.settings.data_dir)
    cut_done = asyncio.Event()
    cutting: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()

    def on_change(snapshot: EngineSnapshot) -> None:
        if (
            snapshot.status == "UPDATE_STATUS_DOWNLOADING"
            and snapshot.progress >= 0.3
            and not cut_done.is_set()
        ):
            cut_done.set()
            cutting.append(loop.create_task(proxy.cut()))

    proxy.down_rate = 4 * 1024 * 1024  # a link slow enough to be cut mid-transfer (~0.25 s for 1 MiB)
    engine = make_engine(tmp_path, proxy.url, key, http, on_change=on_change)
    before = table(engine.disk)
    attempt = asyncio.create_task(engine.check_once())
    await asyncio.wait_for(cut_done.wait(), 10)
    await wait_for(
        lambda: engine.last_download and engine.last_download.failures >= 2, what="2 failed resumes"
    )
    assert engine.status == "UPDATE_STATUS_DOWNLOADING"
    assert table(engine.disk) == before  # nothing written while the payload is incomplete
    await proxy.restore()
    assert await asyncio.wait_for(attempt, 10) is CheckOutcome.UPDATED
    download_ = engine.last_download
    assert download_ is not None and download_.resumed_from > 0
    assert proxy.bytes_down < 1.5 * release["size"]  # resumed, not fetched again from the start
    assert table(engine.disk)[1][1] == "2.0.0"


async def test_download_that_keeps_failing_reports_9_once_the_server_is_back(
    tmp_path: Path, update_server: Any, proxy: FaultProxy, http: httpx.AsyncClient
) -> None:
    publish_synthetic(update_server, "2.0.0", image_size=1024 * 1024)
    key = server_public_key(update_server.settings.data_dir)
    cutting: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()

    def on_change(snapshot: EngineSnapshot) -> None:
        if snapshot.status == "UPDATE_STATUS_DOWNLOADING" and snapshot.progress >= 0.3 and not cutting:
            cutting.append(loop.create_task(proxy.cut()))

    proxy.down_rate = 4 * 1024 * 1024
    few_retries = EngineTimings(download_max_failures=3, download_retry_initial=10, download_retry_max=20)
    engine = make_engine(tmp_path, proxy.url, key, http, on_change=on_change, timings=few_retries)
    before = table(engine.disk)
    assert await asyncio.wait_for(engine.check_once(), 10) is CheckOutcome.FAILED
    assert (engine.status, engine.snapshot.last_error) == ("UPDATE_STATUS_IDLE", 9)  # DownloadTransferError
    assert table(engine.disk) == before
    assert not any(h["event"] == "3/0" for h in history(update_server))  # the server was away

    assert (tmp_path / "payload.partial").stat().st_size > 0  # kept, to resume on the next offer

    await proxy.restore()
    await asyncio.wait_for(engine.check_once(), 10)
    errors = [h for h in history(update_server) if h["event"] == "3/0"]
    assert [e["errorcode"] for e in errors] == [9]  # the queued report went with the next check
    assert instance(update_server, MACHINE)["status"] == "Error"  # type: ignore[index]
