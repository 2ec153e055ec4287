"""Commands queued for nodes in etcd: `coreroll/v1/commands/<machine-id>/<sortable-id>`.

One `CommandRouter` per etcd client watches the whole prefix once and hands each command to the
agent of its machine, so a thousand agents in one process cost one watch, not a thousand. It
lists the prefix first, then watches from the next revision; after a lost watch (etcd down) it
lists again and resumes, so nothing written meanwhile is missed. A command can therefore arrive
twice: agents drop keys they already ran (`Command.key` is unique: ids are never reused).

Public API:
- `COMMANDS_PREFIX`, `command_prefix(machine_id)`.
- `Command(key, machine_id, command_id, value: bytes)`.
- `CommandRouter(client)`: `subscribe(machine_id) -> asyncio.Queue[Command]`,
  `unsubscribe(machine_id)`, `async start()`, `async stop()`, `async list_for(machine_id) ->
  list[Command]` (what is queued now, oldest first), `async delete(command)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from coreroll.etcd.port import EtcdKV, Watch
from coreroll.wire.keys import COMMANDS_PREFIX, command_prefix, parse_command_key

__all__ = ["COMMANDS_PREFIX", "Command", "CommandRouter", "command_prefix"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    key: str
    machine_id: str
    command_id: str
    value: bytes


def _command(text: str, value: bytes) -> Command | None:
    parsed = parse_command_key(text)
    if parsed is None:  # not a command key the dashboard would show (an empty or nested id)
        return None
    return Command(text, parsed[0], parsed[1], value)


class CommandRouter:
    """Fan the commands prefix out to per-machine queues; see the module docstring."""

    def __init__(self, client: EtcdKV, *, retry_initial: float = 0.25, retry_max: float = 10.0) -> None:
        self.client = client
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._queues: dict[str, asyncio.Queue[Command]] = {}
        self._task: asyncio.Task[None] | None = None
        self._watch: Watch | None = None
        self.watching = asyncio.Event()  # set while a watch is established (tests wait on it)

    def subscribe(self, machine_id: str) -> asyncio.Queue[Command]:
        queue = self._queues.get(machine_id)
        if queue is None:
            queue = self._queues[machine_id] = asyncio.Queue()
        return queue

    def unsubscribe(self, machine_id: str) -> None:
        self._queues.pop(machine_id, None)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="command-router")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self._cancel_watch()

    async def _cancel_watch(self) -> None:
        watch, self._watch = self._watch, None
        self.watching.clear()
        if watch is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await watch.cancel()

    async def list_for(self, machine_id: str) -> list[Command]:
        listing = await self.client.get_prefix(command_prefix(machine_id))  # in key (= time) order
        out = [_command(kv.key, kv.value) for kv in listing.kvs]
        return [c for c in out if c is not None]

    async def delete(self, command: Command) -> None:
        await self.client.delete(command.key)

    def _deliver(self, command: Command | None) -> None:
        if command is None:
            return
        queue = self._queues.get(command.machine_id)
        if queue is not None:
            queue.put_nowait(command)

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            try:
                listing = await self.client.get_prefix(COMMANDS_PREFIX)
                for kv in listing.kvs:
                    self._deliver(_command(kv.key, kv.value))
                self._watch = await self.client.watch_prefix(COMMANDS_PREFIX, listing.revision + 1)
                self.watching.set()
                delay = self.retry_initial
                async for event in self._watch:
                    if event.value is not None:  # a put; deletes are the agents' own clean-up
                        self._deliver(_command(event.key, event.value))
                raise ConnectionError("watch ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # etcd down or the watch broke: list again after a pause
                self.watching.clear()
                log.warning("command watch lost (%s); retrying in %.1fs", exc, delay)
                await self._cancel_watch()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
