"""Fixtures for `coreroll report`: a fake Flatcar root, a real dbus-daemon with update_engine and
systemd test services on it, and the session etcd."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from dbus_fast.aio import MessageBus

from tests.host.dbusbus import DbusDaemon, FakeSystemd, FakeUpdateEngine, export
from tests.host.fakehost import make_host


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return make_host(tmp_path / "host")


@pytest.fixture
def dbus_daemon(tmp_path: Path) -> Iterator[DbusDaemon]:
    daemon = DbusDaemon(tmp_path / "dbus")
    yield daemon
    daemon.stop()


class Services:
    def __init__(self, address: str, engine: FakeUpdateEngine, systemd: FakeSystemd) -> None:
        self.address = address
        self.engine = engine
        self.systemd = systemd
        self.buses: list[MessageBus] = []

    async def restart_engine(self) -> FakeUpdateEngine:
        """update_engine stops (its name leaves the bus) and a new process takes the name."""
        old = self.buses.pop(0)
        old.disconnect()
        await old.wait_for_disconnect()
        self.engine = FakeUpdateEngine()
        self.buses.insert(
            0, await export(self.address, "com.coreos.update1", "/com/coreos/update1", self.engine)
        )
        return self.engine


@pytest.fixture
async def services(dbus_daemon: DbusDaemon) -> AsyncIterator[Services]:
    engine, systemd = FakeUpdateEngine(), FakeSystemd()
    engine_bus = await export(dbus_daemon.address, "com.coreos.update1", "/com/coreos/update1", engine)
    systemd_bus = await export(
        dbus_daemon.address, "org.freedesktop.systemd1", "/org/freedesktop/systemd1", systemd
    )
    running = Services(dbus_daemon.address, engine, systemd)
    running.buses = [engine_bus, systemd_bus]
    yield running
    for bus in running.buses:
        bus.disconnect()
