"""Fixtures for `coreroll report`: a fake Flatcar root, a real dbus-daemon with update_engine and
systemd test services on it, and the session etcd."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

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


@pytest.fixture
async def services(dbus_daemon: DbusDaemon) -> AsyncIterator[Services]:
    engine, systemd = FakeUpdateEngine(), FakeSystemd()
    engine_bus = await export(dbus_daemon.address, "com.coreos.update1", "/com/coreos/update1", engine)
    systemd_bus = await export(
        dbus_daemon.address, "org.freedesktop.systemd1", "/org/freedesktop/systemd1", systemd
    )
    yield Services(dbus_daemon.address, engine, systemd)
    engine_bus.disconnect()
    systemd_bus.disconnect()
