"""The run/stop/connection-state loop both dashboard sources share.

A source subclasses `ReconnectingSource`, names itself in `source_name`, and implements `_cycle()`:
connect, (re)sync, follow until the connection is lost. `run()` repeats cycles with the source's
backoff until `stop()`, which any thread may call, also before `run()` started.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable

from coreroll.watch import updates as u
from coreroll.watch.backoff import Backoff


class ReconnectingSource(ABC):
    source_name: str
    sink: Callable[[u.Update], None]
    clock: Callable[[], float]
    backoff: Backoff
    _stopped: bool = False
    _task: asyncio.Task[None] | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    @abstractmethod
    async def _cycle(self) -> None:
        """One connection: connect, sync, follow until it breaks (each source in its own way)."""

    def _state(self, status: str, detail: str = "") -> None:
        self.sink(u.Connection(self.source_name, status, detail, self.clock()))

    def stop(self) -> None:
        """Stop `run()` (callable from any thread, also before it started)."""
        self._stopped = True
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done():
            loop.call_soon_threadsafe(task.cancel)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stopped:
            return
        try:
            while True:
                await self._cycle()
                await asyncio.sleep(self.backoff.next())
        except asyncio.CancelledError:
            pass
