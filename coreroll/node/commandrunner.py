"""Running the commands etcd queues for one node (`coreroll.node.commandbus`), as the agent does.

Each command runs once, in order: the value must be a JSON object `{"action": A, "args": {...}}`;
the action's handler says what happened. A command that cannot be read, an unknown action, or one
its handler refused is logged, recorded in the audit log (`agent-<action>`, or `agent-unreadable`)
and otherwise ignored. Every command, run or not, is reported through `on_done` and deleted.
Keys already run are remembered (the last 256): the router may deliver a command twice.

Public API:
- `Handler`: `async (args: dict) -> (result text, refused?)`.
- `CommandRunner(router, machine_id, handlers: {action: Handler}, *, clock, etcd, etcd_config,
  hostname, on_done=callable(dict), log_prefix="")`: `async run()` (until cancelled: what is
  queued now, then each command as it arrives). `on_done` gets `{id, action, result, at}`, the
  node status's `last_command`.
- `channel_arg(args) -> str`: the channel a `set-channel` command names (ValueError: the refusal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from coreroll.audit import append_audit
from coreroll.etcd.config import EtcdConfig
from coreroll.etcd.port import EtcdKV
from coreroll.node.clock import Clock
from coreroll.node.commandbus import Command, CommandRouter
from coreroll.node.nodestatus import iso_time
from coreroll.wire.channel import channel_problem, is_channel_name

__all__ = ["CommandRunner", "Handler", "channel_arg"]

log = logging.getLogger("coreroll.node.agent")  # the agent's own log lines, as before the split

Handler = Callable[[dict[str, Any]], Awaitable[tuple[str, bool]]]

_DONE_MEMORY = 256  # command keys remembered to drop a command delivered twice


class CommandRunner:
    """One node's commands; see the module docstring."""

    def __init__(
        self,
        router: CommandRouter,
        machine_id: str,
        handlers: Mapping[str, Handler],
        *,
        clock: Clock,
        etcd: EtcdKV,
        etcd_config: EtcdConfig,
        hostname: str,
        on_done: Callable[[dict[str, Any]], None] | None = None,
        log_prefix: str = "",
    ) -> None:
        self.router = router
        self.machine_id = machine_id
        self.handlers = handlers
        self.clock = clock
        self.etcd = etcd
        self.etcd_config = etcd_config
        self.hostname = hostname
        self.on_done = on_done
        self._prefix = log_prefix
        self._queue = router.subscribe(machine_id)
        self._done: deque[str] = deque(maxlen=_DONE_MEMORY)

    async def run(self) -> None:
        try:
            for command in await self.router.list_for(self.machine_id):
                await self._run_command(command)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # etcd away: the router lists again when it reconnects
            log.info("%scannot list commands yet (%s)", self._prefix, exc)
        while True:
            command = await self._queue.get()
            await self._run_command(command)

    async def _run_command(self, command: Command) -> None:
        if command.key in self._done:
            return
        action, result, refused = await self._execute(command)
        log.info("%scommand %s %s: %s", self._prefix, command.command_id, action, result)
        if self.on_done is not None:
            self.on_done(
                {
                    "id": command.command_id,
                    "action": action,
                    "result": result,
                    "at": iso_time(self.clock.now()),
                }
            )
        if refused:
            with contextlib.suppress(Exception):
                await append_audit(
                    self.etcd_config,
                    f"agent-{action or 'unreadable'}",
                    self.machine_id,
                    result,
                    by=f"coreroll-agent@{self.hostname}",
                    kv=self.etcd,
                )
        try:
            await self.router.delete(command)
        except Exception as exc:
            log.warning("%scannot delete %s (%s)", self._prefix, command.key, exc)
        self._done.append(command.key)

    async def _execute(self, command: Command) -> tuple[str, str, bool]:
        """(action, what happened, refused?)"""
        try:
            doc = json.loads(command.value)
            if not isinstance(doc, dict):
                raise ValueError(f"expected a JSON object, found {type(doc).__name__}")
        except (ValueError, UnicodeDecodeError) as exc:
            return "", f"unreadable command {command.key}: {exc}; ignored", True
        action = doc.get("action")
        args = doc.get("args")
        if not isinstance(args, dict):
            args = {}
        handler = self.handlers.get(action) if isinstance(action, str) else None
        if handler is None or not isinstance(action, str):
            return str(action), f"unknown action {action!r} in {command.key}: ignored", True
        result, refused = await handler(args)
        return action, result, refused


def channel_arg(args: dict[str, Any]) -> str:
    """The channel of a `set-channel` command (`args.channel`, or the legacy `args.group`);
    ValueError with the refusal when it is not a channel name (`coreroll.wire.channel`): the
    command comes from etcd, so it is checked here, before any handler sees it."""
    channel = args.get("channel", args.get("group"))
    if not is_channel_name(channel):
        raise ValueError(f"set-channel refused: args.channel {channel_problem(channel)}")
    return channel
