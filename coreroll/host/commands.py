"""The dashboard's queued commands, run with a real host's tools (handlers for
`coreroll.node.commandrunner.CommandRunner`, which reads, records and deletes each command):

- `check`: update_engine's AttemptUpdate over D-Bus (or `update_engine_client -check_for_update`);
- `set-channel` (args `{"channel": C}`): GROUP=C in /etc/flatcar/update.conf under the root, every
  other line kept byte for byte (`coreroll.node.updateconf`), then update-engine.service restarted
  (update_engine reads GROUP when it starts). A file that cannot be read is not written.

Nothing here reboots: locksmithd does, when update_engine says UPDATED_NEED_REBOOT.

Public API: `HostCommands(root, engine, restart, on_changed)`: `handlers` (action -> Handler);
`on_changed()` (async) runs after a command changed something, to publish the new state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from coreroll.host.facts import writable_update_conf
from coreroll.host.hostfs import HostFileError, read_regular_bytes
from coreroll.host.restart import Restarter, RestartError
from coreroll.host.update_engine import EngineError, UpdateEngine
from coreroll.node.commandrunner import Handler, channel_arg
from coreroll.node.updateconf import UpdateConf, UpdateConfError

__all__ = ["HostCommands"]


class HostCommands:
    def __init__(
        self,
        root: Path,
        engine: UpdateEngine,
        restart: Restarter,
        on_changed: Callable[[], Awaitable[None]],
    ) -> None:
        self.root = Path(root)
        self.engine = engine
        self.restart = restart
        self.on_changed = on_changed

    @property
    def handlers(self) -> dict[str, Handler]:
        return {"check": self.check, "set-channel": self.set_channel}

    async def check(self, args: dict[str, Any]) -> tuple[str, bool]:
        try:
            result = await self.engine.attempt_update()
        except EngineError as exc:
            return str(exc), True
        await self.on_changed()
        return result, False

    async def set_channel(self, args: dict[str, Any]) -> tuple[str, bool]:
        try:
            channel = channel_arg(args)
            path = writable_update_conf(self.root)
            data = read_regular_bytes(path)  # HostFileError when unreadable: nothing is written then
            conf = UpdateConf.parse(data or b"", str(path))
            old = conf.get("GROUP")
            conf.set("GROUP", channel)
            conf.save(path)
        except (ValueError, HostFileError, UpdateConfError, OSError) as exc:
            message = str(exc)
            return message if message.startswith(
                "set-channel refused"
            ) else f"set-channel refused: {exc}", True
        changed = f"GROUP {old or '(unset)'} -> {channel} in {path}"
        try:
            restarted = await self.restart()
        except RestartError as exc:
            await self.on_changed()
            return f"{changed}, but update-engine was not restarted: {exc}", True
        await self.on_changed()
        return f"{changed}; {restarted}", False
