"""`DemoThread`: a `DemoSystem` on its own event loop in a background thread.

The dashboard (or a Pilot test) runs its own event loop; the demo's fleet, clock and script run
in this thread so neither delays the other's timers.

    demo = DemoThread(options, on_phase=callback, on_progress=print)
    system = demo.start(run=False)  # blocks until everything is up (raises what went wrong)
    demo.begin()               # the script starts (e.g. once the dashboard shows); with
                               # start(run=True) it starts at once. on_phase: from the demo thread
    demo.stop()                # everything stops; temp files removed unless options.keep

`call(coro_fn, timeout)` runs a coroutine function on the demo's loop and returns its result
(e.g. `demo.call(lambda: summarize(system))`). `error` holds an exception the script raised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from coreroll.demo.scenarios import script_for
from coreroll.demo.system import DemoOptions, DemoSystem, Phase

log = logging.getLogger(__name__)
T = TypeVar("T")


class DemoThread:
    def __init__(
        self,
        options: DemoOptions,
        *,
        on_phase: Callable[[Phase], None] | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        self.system = DemoSystem(options, on_phase=on_phase, on_progress=on_progress)
        self.error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        self._begin: asyncio.Event | None = None

    def start(self, timeout: float = 180.0, *, run: bool = True) -> DemoSystem:
        self._thread = threading.Thread(target=self._main, name="coreroll-demo", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the demo did not start within {timeout:g} s")
        if self._start_error is not None:
            self._thread.join(timeout=30)
            raise self._start_error
        if run:
            self.begin()
        return self.system

    def begin(self) -> None:
        """Start the scenario's script (thread-safe; once)."""
        loop, begin = self._loop, self._begin
        if loop is not None and begin is not None and not loop.is_closed():
            loop.call_soon_threadsafe(begin.set)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:  # e.g. a crashed node's power-on timer
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self._begin = asyncio.Event()
        try:
            await self.system.start()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        script = asyncio.create_task(self._script(), name="demo-script")
        script.add_done_callback(self._script_done)
        try:
            await self._stop.wait()
        finally:
            if not script.done():
                script.cancel()
                await asyncio.gather(script, return_exceptions=True)
            await self.system.stop()

    async def _script(self) -> bool:
        assert self._begin is not None
        await self._begin.wait()
        return await self.system.run(script_for(self.system.options.scenario), None)

    def _script_done(self, task: asyncio.Task[bool]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.error = exc
            log.error("demo script failed: %s", exc, exc_info=exc)
            self.system.set_phase("failed", f"the demo script failed: {exc}")

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
        """Run `fn()` on the demo's loop; wait for its result."""
        if self._loop is None:
            raise RuntimeError("the demo thread is not running")

        async def run() -> T:
            return await fn()

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(timeout)

    def stop(self, timeout: float = 60.0) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop.set)
            except RuntimeError:  # the loop already closed
                pass
        if self._thread is not None:
            self._thread.join(timeout)
