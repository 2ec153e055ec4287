"""Restarting update-engine.service after a channel switch (update_engine reads GROUP at start):
through systemd over D-Bus (`org.freedesktop.systemd1` Manager `RestartUnit(unit, "replace")`), or
with a command (`--restart-command "systemctl restart update-engine.service"`). Injectable: the
reporter takes any `Restarter`, so tests observe the restart.

Public API: `Restarter` (`async () -> str`, raises RestartError), `RestartError`,
`systemd_restart(bus, unit=UPDATE_ENGINE_UNIT)`, `command_restart(argv)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from coreroll.host.dbus import DbusError, SystemBus
from coreroll.host.tools import ToolError, run_tool

__all__ = ["UPDATE_ENGINE_UNIT", "RestartError", "Restarter", "command_restart", "systemd_restart"]

UPDATE_ENGINE_UNIT = "update-engine.service"
Restarter = Callable[[], Awaitable[str]]


class RestartError(RuntimeError):
    """The restart was not done; `str()` says why."""


def systemd_restart(bus: SystemBus, unit: str = UPDATE_ENGINE_UNIT) -> Restarter:
    async def restart() -> str:
        try:
            await bus.call(
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "RestartUnit",
                "ss",
                [unit, "replace"],
            )
        except DbusError as exc:
            raise RestartError(f"cannot restart {unit}: {exc}") from None
        return f"{unit} restarted (systemd RestartUnit)"

    return restart


def command_restart(argv: list[str]) -> Restarter:
    async def restart() -> str:
        try:
            await run_tool(argv, time_limit=60.0)
        except ToolError as exc:
            raise RestartError(str(exc)) from None
        return f"ran {' '.join(argv)}"

    return restart
