"""Fixtures for the fault scenarios: a killable etcd of our own, the real update server, a fleet on
a fast scaled clock, and the dashboard's model fed by its real etcd source.

At the end of the session the counts the tests recorded (faults injected, invariants checked and
violated) are merged into bench/results/reliability.json (tests/faults/counts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.launcher import EmbeddedEtcd
from coreroll.fleet.history import check_capacity, check_reboots, read_lock_history
from coreroll.fleet.scenario import SCENARIOS, Faults, LockGroupSpec, Spread
from coreroll.fleet.sim import Fleet
from coreroll.node.clock import ScaledClock
from coreroll.omaha.payload import generate_private_key, write_keypair
from coreroll.server.runner import free_port
from coreroll.watch.etcd_source import EtcdSource
from coreroll.watch.feed_source import FeedSource
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import UpdateBuffer
from tests.faults.counts import check, flush, outcome, record
from tests.node.test_engine_support import server_public_key, update_server  # noqa: F401  (a fixture)

OLD, NEW = "3000.0.0", "3100.0.0"
# update_engine's schedule, compressed: first check within 1-2 simulated minutes, then every 5.
FAST = Spread(first_check=30, first_check_fuzz=20, interval=120, interval_fuzz=30, failed_boot_timeout=120)


def pytest_sessionfinish(session: pytest.Session) -> None:
    flush()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "tests/faults/" not in report.nodeid:
        return
    suite = "soak" if "test_soak" in report.nodeid else "faults"
    if report.when == "call":  # a skipped soak records nothing, so its last real run's figures stay
        record(outcome(report), suite=suite)


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EmbeddedEtcd]:
    """An etcd only this test uses: it may be killed (SIGKILL) and started again with its data."""
    server = EmbeddedEtcd(data_dir=tmp_path / "etcd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def until(predicate: Callable[[], Any], within: float, what: str, poll: float = 0.01) -> None:
    """Poll `predicate` every `poll` real seconds; fail naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(poll)


def make_fleet(
    base: Path,
    server: Any,  # anything with .url and .data_dir or .settings.data_dir (thread or process server)
    etcd_endpoint: str,
    nodes: int,
    *,
    groups: tuple[LockGroupSpec, ...] = (LockGroupSpec("web", 2, 2.0), LockGroupSpec("db", 1, 1.0)),
    time_factor: float = 100.0,
    spread: Spread = FAST,
    faults: Faults | None = None,
    seed: int = 7,
) -> Fleet:
    scenario = dataclasses.replace(
        SCENARIOS["stable"], spread=spread, lock_groups=groups, faults=faults or Faults()
    )
    return Fleet(
        base / "fleet",
        server.url,
        EtcdConfig(endpoints=(etcd_endpoint,), timeout=1.0),
        scenario,
        nodes,
        ScaledClock(time_factor),
        version=OLD,
        image=b"installed image " * 64,
        public_key=server_public_key(getattr(server, "data_dir", None) or server.settings.data_dir),
        seed=seed,
        report_interval=0.5,
    )


class ServerProc:
    """`coreroll server` as a child process on a port that stays the same across restarts (so the
    agents' configured URL keeps working, as with a server restarted by systemd). The runner's
    start_server_process picks a new port on every start, hence this small variant."""

    def __init__(self, data_dir: Path, token: str = "faults-token") -> None:
        self.data_dir = data_dir
        self.token = token
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, within: float = 30.0) -> None:
        argv = [sys.executable, "-m", "coreroll", "server", "--listen", f"127.0.0.1:{self.port}",
                "--data", str(self.data_dir), "--token", self.token]  # fmt: skip
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log)
        self.starts += 1
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {(self.data_dir / 'server.log').read_text()[-500:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not healthy within {within}s")
            time.sleep(0.05)  # polling a child process: nothing to wait on

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, requests in flight are cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_proc(tmp_path: Path) -> Iterator[ServerProc]:
    data = tmp_path / "server"
    write_keypair(data / "keys", generate_private_key())
    proc = ServerProc(data)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@dataclass
class Watch:
    """The dashboard's view of the cluster: FleetModel fed by a real EtcdSource (and FeedSource)."""

    model: FleetModel
    buffer: UpdateBuffer
    sources: list[Any]

    def pump(self) -> FleetModel:
        self.model.apply_many(self.buffer.drain())
        return self.model

    async def until(self, predicate: Callable[[FleetModel], bool], within: float, what: str) -> None:
        await until(lambda: predicate(self.pump()), within, what)

    def status(self, source: str) -> str:
        return self.pump().connections[source].status


@contextlib.asynccontextmanager
async def watching(endpoint: str | None, server_url: str | None = None) -> AsyncIterator[Watch]:
    """The dashboard's sources as `coreroll dash` wires them, on fast health probes."""
    buffer = UpdateBuffer()
    sources: list[Any] = []
    if endpoint:
        sources.append(
            EtcdSource(EtcdConfig(endpoints=(endpoint,), timeout=1.0), buffer.put, probe_interval=0.2)
        )
    if server_url:
        sources.append(FeedSource(server_url, buffer.put, probe_interval=0.2, timeout=2.0))
    tasks = [asyncio.create_task(source.run(), name=f"faults-watch-{i}") for i, source in enumerate(sources)]
    try:
        # real-time model over a x100 fleet: its reboots take < 1 s real, so a short offline grace
        yield Watch(FleetModel(stale_offline_grace=5.0), buffer, sources)
    finally:
        for source, task in zip(sources, tasks, strict=True):
            source.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def check_lock_invariants(fleet: Fleet, configured: dict[str, int], suite: str = "faults") -> int:
    """From etcd's own history: never more holders than the max, never a reboot without the lock.
    Counts each as one invariant check; returns the number of lock writes examined.

    A reboot record carries the semaphore the node read just before rebooting. When etcd was down
    at that instant (the etcd-kill scenarios) the read fails and the record has no revision; such
    a reboot is checked on the node's own lock write instead: the revision of its successful lock
    must open a holding interval in etcd's history, and the fleet's lock span (acquired when that
    lock was taken, released after the reboot) must cover the reboot time."""
    assert fleet.etcd is not None
    events = await read_lock_history(fleet.etcd, fleet.start_revision)
    assert check("lock_group_never_over_max", check_capacity(events, configured), suite) == []
    seen = [r for r in fleet.reboots if r.key_revision is not None]
    unseen = [r for r in fleet.reboots if r.key_revision is None and r.strategy == "etcd-lock"]
    problems = check_reboots(seen, events)
    problems += [
        p
        for r in unseen
        for p in check_reboots([dataclasses.replace(r, key_revision=r.lock_revision)], events)
    ]
    for r in unseen:
        spans = [s for s in fleet.spans if s.machine_id == r.machine_id and s.group == r.group]
        if not any(s.acquired <= r.at and (s.released is None or r.at <= s.released) for s in spans):
            problems.append(f"{r.machine_id} rebooted at {r.at} outside its lock spans {spans}")
    assert check("no_reboot_without_lock", problems, suite) == []
    assert check("rebooting_node_listed_as_holder", [
        f"{r.machine_id} rebooted while holders were {r.holders}"
        for r in seen if r.strategy == "etcd-lock" and r.machine_id not in r.holders
    ], suite) == []  # fmt: skip
    record("lock_writes_examined", len(events), suite)
    record("reboots_examined", len(fleet.reboots), suite)
    record("reboots_while_etcd_was_down", len(unseen), suite)
    return len(events)
