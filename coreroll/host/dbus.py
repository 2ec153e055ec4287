"""One connection to the host's system bus (dbus-fast), shared by the update_engine client and the
systemd restart: connects on demand, reconnects after the bus went away, bounds every call with a
timeout, and keeps signal subscriptions (match rule + handler) across reconnects.

`address` None means the system bus (`DBUS_SYSTEM_BUS_ADDRESS`, else
`unix:path=/var/run/dbus/system_bus_socket`); the container mounts the host's socket there.

Public API: `DbusError`, `SystemBus(address=None, *, call_timeout=5.0)`: `async connect() -> bool`,
`connected`, `unique_name` (this connection's ":1.N", or None), `last_error`, `async call(destination,
path, interface, member, signature="", body=()) -> list` (the reply body; DbusError naming the call
otherwise), `subscribe(rule, handler)` (handler gets each matching dbus_fast Message),
`on_connect(hook)` (`async hook()` awaited after every new connection, once its rules are added),
`async close()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

__all__ = ["DbusError", "SystemBus"]

log = logging.getLogger(__name__)


class DbusError(RuntimeError):
    """A call that failed: bus unreachable, no such service, an error reply, or no answer in time."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name  # the D-Bus error name, when the bus answered with one


class SystemBus:
    def __init__(self, address: str | None = None, *, call_timeout: float = 5.0) -> None:
        self.address = address
        self.call_timeout = call_timeout
        self.last_error: str | None = None
        self._bus: MessageBus | None = None
        self._lock = asyncio.Lock()
        self._subscriptions: list[tuple[str, Callable[[Message], None]]] = []
        self._on_connect: list[Callable[[], Awaitable[None]]] = []

    @property
    def connected(self) -> bool:
        return self._bus is not None and self._bus.connected

    @property
    def unique_name(self) -> str | None:
        return self._bus.unique_name if self.connected and self._bus is not None else None

    async def connect(self) -> bool:
        """True when connected (now or already); False, with `last_error` set, when the bus is away."""
        async with self._lock:
            if self.connected:
                return True
            self._bus = None
            try:
                async with asyncio.timeout(self.call_timeout):
                    bus = await MessageBus(bus_address=self.address, bus_type=BusType.SYSTEM).connect()
                    for rule, handler in self._subscriptions:
                        await self._add_match(bus, rule)
                        bus.add_message_handler(_signals_only(handler))
            except Exception as exc:  # refused, missing socket, auth failure, timeout
                self.last_error = (
                    f"system bus {self.address or '(default)'} unreachable: {exc or type(exc).__name__}"
                )
                return False
            self._bus = bus
            self.last_error = None
        for hook in self._on_connect:  # outside the lock: a hook may call()
            try:
                await hook()
            except Exception:  # a hook's failure must not lose the connection
                log.exception("after connecting to the system bus")
        return True

    def on_connect(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Before `connect()`: `hook` is awaited after every new connection."""
        self._on_connect.append(hook)

    async def _add_match(self, bus: MessageBus, rule: str) -> None:
        reply = await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )
        if reply.message_type == MessageType.ERROR:
            raise DbusError(f"AddMatch {rule}: {reply.error_name}", reply.error_name)

    def subscribe(self, rule: str, handler: Callable[[Message], None]) -> None:
        """Before `connect()`: the rule is added (again) on every connection."""
        self._subscriptions.append((rule, handler))

    async def call(
        self,
        destination: str,
        path: str,
        interface: str,
        member: str,
        signature: str = "",
        body: Sequence[Any] = (),
    ) -> list[Any]:
        what = f"{destination} {interface}.{member}"
        if not await self.connect():
            raise DbusError(f"{what}: {self.last_error}")
        assert self._bus is not None
        message = Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=list(body),
        )
        try:
            async with asyncio.timeout(self.call_timeout):
                reply = await self._bus.call(message)
        except TimeoutError:
            raise DbusError(f"{what}: no answer within {self.call_timeout:g}s") from None
        except Exception as exc:  # the connection broke under the call
            self._bus = None
            raise DbusError(f"{what}: {exc or type(exc).__name__}") from None
        if reply is None:
            raise DbusError(f"{what}: no reply")
        if reply.message_type == MessageType.ERROR:
            detail = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
            raise DbusError(f"{what}: {reply.error_name} {detail}".strip(), reply.error_name)
        return list(reply.body)

    async def close(self) -> None:
        bus, self._bus = self._bus, None
        if bus is not None:
            bus.disconnect()
            try:
                async with asyncio.timeout(2.0):
                    await bus.wait_for_disconnect()
            except Exception:  # already gone, or torn down with an error: either way, closed
                pass


def _signals_only(handler: Callable[[Message], None]) -> Callable[[Message], None]:
    def on_message(message: Message) -> None:
        if message.message_type == MessageType.SIGNAL:
            try:
                handler(message)
            except Exception:  # a hostile signal must not take the bus connection down
                log.exception("signal handler failed on %s.%s", message.interface, message.member)

    return on_message
