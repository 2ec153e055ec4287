"""update_engine's StatusUpdate signals are taken only from the unique name that owns
com.coreos.update1 (issue 16 defect 5): a second peer on the real dbus-daemon emitting the same
path, interface and member, broadcast or sent to the reporter alone, is ignored; the owner's
signals are taken, also after update_engine restarts under a new unique name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from coreroll.host.dbus import SystemBus
from coreroll.host.update_engine import UpdateEngine
from coreroll.node.engine_types import EngineSnapshot
from tests.host.conftest import Services

SPOOF = [0, 0.0, "UPDATE_STATUS_UPDATED_NEED_REBOOT", "6666.6.6", 1]


class Seen:
    """The (status, new version) of every signal `on_status` got, and a wait on them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def on_status(self, snapshot: EngineSnapshot, problems: list[str]) -> None:
        self.items.append((snapshot.status, snapshot.new_version))
        self._changed.set()

    async def until(self, predicate: Callable[[list[tuple[str, str]]], bool], what: str) -> None:
        async with asyncio.timeout(5):
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()
        assert predicate(self.items), what


@pytest.fixture
async def spoofer(services: Services) -> AsyncIterator[MessageBus]:
    bus = await MessageBus(bus_address=services.address).connect()
    yield bus
    bus.disconnect()


async def spoof(spoofer: MessageBus, destination: str | None) -> None:
    """A StatusUpdate as update_engine's would look, then a round trip: the daemon has routed the
    signal before it answers, so anything the real service sends afterwards arrives after it."""
    await spoofer.send(
        Message(
            message_type=MessageType.SIGNAL,
            destination=destination,
            path="/com/coreos/update1",
            interface="com.coreos.update1.Manager",
            member="StatusUpdate",
            signature="xdssx",
            body=SPOOF,
        )
    )
    await spoofer.introspect("org.freedesktop.DBus", "/org/freedesktop/DBus")


async def test_only_the_owner_of_update_engines_name_is_believed(
    services: Services, spoofer: MessageBus
) -> None:
    seen = Seen()
    bus = SystemBus(services.address)
    engine = UpdateEngine(bus, seen.on_status)
    engine.start()
    assert await bus.connect()
    try:
        await spoof(spoofer, None)  # broadcast, as update_engine's own signals are
        services.engine.set_status(0.5, "UPDATE_STATUS_DOWNLOADING", "3850.0.0", 10)
        await seen.until(lambda items: ("UPDATE_STATUS_DOWNLOADING", "3850.0.0") in items, "the real signal")
        assert seen.items == [("UPDATE_STATUS_DOWNLOADING", "3850.0.0")]
        await spoof(spoofer, bus.unique_name)  # sent to this connection alone: no match rule needed
        services.engine.set_status(0.75, "UPDATE_STATUS_DOWNLOADING", "3850.0.0", 10)
        await seen.until(lambda items: len(items) == 2, "the second real signal")
        assert seen.items[1] == ("UPDATE_STATUS_DOWNLOADING", "3850.0.0")
        assert engine.owner == services.buses[0].unique_name

        # update_engine restarts (a channel switch does that): the name moves to a new unique name
        old_owner = engine.owner
        restarted = await services.restart_engine()
        restarted.set_status(0.0, "UPDATE_STATUS_VERIFYING", "3850.0.0", 10)
        await seen.until(lambda items: len(items) == 3, "the restarted service's signal")
        assert engine.owner == services.buses[0].unique_name != old_owner
        await spoof(spoofer, None)
        await spoof(spoofer, bus.unique_name)
        restarted.set_status(0.0, "UPDATE_STATUS_UPDATED_NEED_REBOOT", "3850.0.0", 10)
        await seen.until(lambda items: len(items) == 4, "the fourth real signal")
        assert [status for status, _ in seen.items] == [
            "UPDATE_STATUS_DOWNLOADING",
            "UPDATE_STATUS_DOWNLOADING",
            "UPDATE_STATUS_VERIFYING",
            "UPDATE_STATUS_UPDATED_NEED_REBOOT",
        ]
        assert "6666.6.6" not in {version for _, version in seen.items}
    finally:
        await bus.close()
