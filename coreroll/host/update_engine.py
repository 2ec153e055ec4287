"""update_engine as a client sees it: over D-Bus (`com.coreos.update1`, object `/com/coreos/update1`,
interface `com.coreos.update1.Manager`: `GetStatus() -> (x d s s x)`, `AttemptUpdate()`, signal
`StatusUpdate` with GetStatus's five values), falling back to `update_engine_client -status` /
`-check_for_update` when D-Bus is not reachable (no bus, or update_engine not on it).

Every StatusUpdate signal update_engine sends is passed to `on_status` as it arrives, so the
reporter publishes status changes at once; `status()` is the poll that covers a missed signal. Any
peer on the bus may emit a signal with update_engine's path, interface and member, or send one to
this connection alone, so a signal is taken only from the unique name that owns
`com.coreos.update1` (GetNameOwner at each connection, then followed through NameOwnerChanged when
update_engine restarts); others are ignored and logged once per sender.

Public API: `UpdateEngine(bus, on_status, *, client_tool="update_engine_client")`:
`async status() -> (EngineSnapshot, problems, via)`, `async attempt_update() -> str` (what was done;
`EngineError` when neither way worked), `start()` (subscribe to StatusUpdate and to the name's
owner; before `bus.connect()`), `owner`. `via` is "dbus" or "update_engine_client".
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from dbus_fast import Message

from coreroll.host.dbus import DbusError, SystemBus
from coreroll.host.engine_status import parse_client_status, snapshot_from_dbus
from coreroll.host.tools import ToolError, run_tool
from coreroll.node.engine_types import EngineSnapshot
from coreroll.textsafe import visible

__all__ = ["BUS_NAME", "INTERFACE", "OBJECT_PATH", "EngineError", "UpdateEngine"]

log = logging.getLogger(__name__)

BUS_NAME = "com.coreos.update1"
OBJECT_PATH = "/com/coreos/update1"
INTERFACE = "com.coreos.update1.Manager"
# locksmithd's own rule, narrowed to update_engine's name: the bus then routes only its broadcasts
SIGNAL_RULE = (
    f"type='signal',sender='{BUS_NAME}',path='{OBJECT_PATH}',interface='{INTERFACE}',member='StatusUpdate'"
)
_DBUS = "org.freedesktop.DBus"
OWNER_RULE = (
    f"type='signal',sender='{_DBUS}',path='/org/freedesktop/DBus',interface='{_DBUS}',"
    f"member='NameOwnerChanged',arg0='{BUS_NAME}'"
)
_WARNED_MEMORY = 64  # senders of ignored signals remembered, so each is logged once


class EngineError(RuntimeError):
    """Neither D-Bus nor update_engine_client could do it; `str()` says what each answered."""


class UpdateEngine:
    def __init__(
        self,
        bus: SystemBus,
        on_status: Callable[[EngineSnapshot, list[str]], None],
        *,
        client_tool: str = "update_engine_client",
    ) -> None:
        self.bus = bus
        self.on_status = on_status
        self.client_tool = client_tool
        self.owner: str | None = None  # the unique name owning com.coreos.update1, when known
        self._owner_changes = 0
        self._warned: dict[str, None] = {}

    def start(self) -> None:
        self.bus.subscribe(OWNER_RULE, self._owner_changed)
        self.bus.subscribe(SIGNAL_RULE, self._signal)
        self.bus.on_connect(self._learn_owner)

    async def _learn_owner(self) -> None:
        self.owner = None  # a unique name from an earlier connection may now be someone else's
        changes = self._owner_changes
        try:
            reply = await self.bus.call(
                _DBUS, "/org/freedesktop/DBus", _DBUS, "GetNameOwner", "s", [BUS_NAME]
            )
        except DbusError:  # NameHasNoOwner: update_engine is not running (yet)
            return
        owner = reply[0] if reply and isinstance(reply[0], str) else None
        if changes == self._owner_changes:  # else a NameOwnerChanged, newer than this reply, decided
            self.owner = owner

    def _owner_changed(self, message: Message) -> None:
        if message.sender != _DBUS or message.member != "NameOwnerChanged" or message.signature != "sss":
            return
        name, _old, new = message.body
        if name == BUS_NAME:
            self.owner = new or None
            self._owner_changes += 1

    def _from_owner(self, message: Message) -> bool:
        if message.sender is not None and message.sender == self.owner:
            return True
        sender = str(message.sender)
        if sender not in self._warned:
            self._warned[sender] = None
            while len(self._warned) > _WARNED_MEMORY:
                del self._warned[next(iter(self._warned))]
            log.warning(
                "ignored a StatusUpdate signal from %s: %s is owned by %s",
                visible(sender),
                BUS_NAME,
                self.owner or "nobody",
            )
        return False

    def _signal(self, message: Message) -> None:
        if message.interface != INTERFACE or message.member != "StatusUpdate":
            return
        if message.path != OBJECT_PATH or not self._from_owner(message):
            return
        if message.signature != "xdssx":
            self.on_status(
                *snapshot_from_dbus([], f"StatusUpdate signal with signature {message.signature!r}")
            )
            return
        self.on_status(*snapshot_from_dbus(message.body, "StatusUpdate signal"))

    async def status(self) -> tuple[EngineSnapshot, list[str], str]:
        try:
            body = await self.bus.call(BUS_NAME, OBJECT_PATH, INTERFACE, "GetStatus")
        except DbusError as dbus_error:
            try:
                output = await run_tool([self.client_tool, "-status"])
            except ToolError as tool_error:
                raise EngineError(f"update_engine status unknown: {dbus_error}; {tool_error}") from None
            snapshot, problems = parse_client_status(output, f"{self.client_tool} -status")
            return snapshot, problems, "update_engine_client"
        snapshot, problems = snapshot_from_dbus(body, "GetStatus")
        return snapshot, problems, "dbus"

    async def attempt_update(self) -> str:
        try:
            await self.bus.call(BUS_NAME, OBJECT_PATH, INTERFACE, "AttemptUpdate")
        except DbusError as dbus_error:
            try:
                await run_tool([self.client_tool, "-check_for_update"], time_limit=60.0)
            except ToolError as tool_error:
                raise EngineError(f"update check not started: {dbus_error}; {tool_error}") from None
            return f"update check started ({self.client_tool} -check_for_update)"
        return "update check started (AttemptUpdate)"
