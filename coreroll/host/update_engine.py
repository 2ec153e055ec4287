"""update_engine as a client sees it: over D-Bus (`com.coreos.update1`, object `/com/coreos/update1`,
interface `com.coreos.update1.Manager`: `GetStatus() -> (x d s s x)`, `AttemptUpdate()`, signal
`StatusUpdate` with GetStatus's five values), falling back to `update_engine_client -status` /
`-check_for_update` when D-Bus is not reachable (no bus, or update_engine not on it).

Every StatusUpdate signal is passed to `on_status` as it arrives, so the reporter publishes status
changes at once; `status()` is the poll that covers a missed signal.

Public API: `UpdateEngine(bus, on_status, *, client_tool="update_engine_client")`:
`async status() -> (EngineSnapshot, problems, via)`, `async attempt_update() -> str` (what was done;
`EngineError` when neither way worked), `start()` (subscribe to StatusUpdate; before
`bus.connect()`). `via` is "dbus" or "update_engine_client".
"""

from __future__ import annotations

from collections.abc import Callable

from dbus_fast import Message

from coreroll.host.dbus import DbusError, SystemBus
from coreroll.host.engine_status import parse_client_status, snapshot_from_dbus
from coreroll.host.tools import ToolError, run_tool
from coreroll.node.engine_types import EngineSnapshot

__all__ = ["BUS_NAME", "INTERFACE", "OBJECT_PATH", "EngineError", "UpdateEngine"]

BUS_NAME = "com.coreos.update1"
OBJECT_PATH = "/com/coreos/update1"
INTERFACE = "com.coreos.update1.Manager"
SIGNAL_RULE = f"type='signal',interface='{INTERFACE}',member='StatusUpdate'"  # locksmithd's own rule


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

    def start(self) -> None:
        self.bus.subscribe(SIGNAL_RULE, self._signal)

    def _signal(self, message: Message) -> None:
        if message.interface != INTERFACE or message.member != "StatusUpdate":
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
