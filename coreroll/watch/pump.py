"""`UpdatePump`: moves what the sources put in an `UpdateBuffer` into the `FleetModel`, in time
slices, and asks for one repaint per flush. Plain asyncio, no UI: the dashboard hands it a
`repaint` callback (and, to run inside Textual, its own timer and worker functions).

    pump = UpdatePump(model, buffer, repaint=app.repaint, refresh_interval=0.2)
    pump.attach()          # in the running loop: from now on the buffer wakes the pump
    pump.key_pressed()     # on every key: model work steps aside for KEY_QUIET

When the buffer goes non-empty (from any thread) the pump schedules ONE flush, at most every
`refresh_interval` seconds. The flush applies the updates in slices of SLICE seconds, yielding
between slices so keys stay responsive, then repaints once. A big backlog (the first listing of a
large fleet, cut into pieces by `coreroll.watch.intake`) gets a first repaint after FIRST_BUDGET
seconds of work, so rows show at once, then one repaint per LOAD_BUDGET seconds until it is in
(or per LOAD_REPAINT_SHARE^-1 times the last repaint's time, if longer: a repaint of 100,000 rows
re-sorts them all, and on a busy machine such repaints took a quarter of the load).
For KEY_QUIET after a key, model work and repaints wait (at most KEY_WAIT_MAX in one go), so a
keypress never queues behind a data slice. `frozen` keeps applying data but stops repainting.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from coreroll.watch.intake import split_updates
from coreroll.watch.model import FleetModel
from coreroll.watch.updates import Update, UpdateBuffer

CallLater = Callable[[float, Callable[[], None]], object]
StartTask = Callable[[Coroutine[Any, Any, None]], object]


class UpdatePump:
    SLICE = 0.005  # seconds of model work between yields to the event loop
    FIRST_BUDGET = 0.04  # seconds of model work before the very first repaint
    LOAD_BUDGET = 1.0  # seconds of model work per repaint while a big backlog is read in
    LOAD_REPAINT_SHARE = 0.1  # at most this share of the load's time goes to repaints
    CHUNK = 500  # first-listing statuses applied before the first paint
    KEY_QUIET = 0.04  # seconds after a key during which model work waits (the key paints first)
    KEY_WAIT_MAX = 0.1  # the longest model work waits for keys in one go

    def __init__(
        self,
        model: FleetModel,
        buffer: UpdateBuffer,
        *,
        repaint: Callable[[], None],
        refresh_interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        call_later: CallLater | None = None,
        start: StartTask | None = None,
    ) -> None:
        self.model = model
        self.buffer = buffer
        self.repaint = repaint
        self.refresh_interval = refresh_interval
        self.clock = clock
        self.sleep = sleep
        self._call_later = call_later
        self._start = start
        self.frozen = False
        self.changed: set[str] = set()  # machine ids changed since the last `take_changed()`
        self.repaints = 0  # repaints this pump asked for
        self.unusable_updates = 0  # updates the model refused with an exception (see _unusable)
        self.settled = False  # the first listing is in (and moved out of the collector's way)
        self.on_drain: Callable[[], None] | None = None  # bench hook: right after the buffer is drained
        self._backlog: deque[Update] = deque()
        self._scheduled = False
        self._flushing = False
        self._again = False
        self._last_flush = 0.0
        self._repaint_took = 0.0  # seconds the last repaint took
        self._key_at = -1e9
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = threading.get_ident()
        self._tasks: set[asyncio.Task[None]] = set()
        buffer.on_first = self.wake_threadsafe

    # -- waking -----------------------------------------------------------------------------
    def attach(self) -> None:
        """Start serving: call in the running event loop. Flushes whatever is already buffered."""
        _rare_full_collections()
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        self.wake()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the pump was attached in (None before `attach()`)."""
        return self._loop

    def wake_threadsafe(self) -> None:
        if threading.get_ident() == self._thread_id:
            self.wake()
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self.wake)

    def wake(self) -> None:
        if self._scheduled or self._loop is None:  # not attached yet: attach() flushes
            return
        self._scheduled = True
        delay = max(self._last_flush + self.refresh_interval - self.clock(), 0.001)
        if self._call_later is not None:
            self._call_later(delay, self._start_flush)
        else:
            self._loop.call_later(delay, self._start_flush)

    def _start_flush(self) -> None:
        if self._flushing:  # the running flush picks the new data up before it ends
            self._scheduled = False
            self._again = True
            return
        self._flushing = True
        if self._start is not None:
            self._start(self.flush_sliced())
        else:
            task = asyncio.ensure_future(self.flush_sliced())
            self._tasks.add(task)  # a strong reference until it is done
            task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        """Cancel a running flush (only the pump's own tasks; `start=` owners cancel theirs)."""
        for task in list(self._tasks):
            task.cancel()

    # -- keys -------------------------------------------------------------------------------
    def key_pressed(self) -> None:
        self._key_at = self.clock()

    def key_recent(self) -> bool:
        """A key was pressed less than KEY_QUIET ago (its effect may still be on its way)."""
        return self.clock() - self._key_at < self.KEY_QUIET

    async def _after_keys(self) -> None:
        """Model work steps aside while a key's effect is on its way to the screen (KEY_QUIET
        after the last key); at most KEY_WAIT_MAX at a time, so a held-down key cannot stall
        the data."""
        deadline = self.clock() + self.KEY_WAIT_MAX
        while True:  # a new key while waiting moves the end of the quiet time
            wait = min(self._key_at + self.KEY_QUIET, deadline) - self.clock()
            if wait <= 0:
                return
            await self.sleep(wait)

    # -- flushing ---------------------------------------------------------------------------
    @property
    def loading(self) -> int:
        """Updates received but not applied yet (a big first listing being read in)."""
        return len(self._backlog)

    async def flush_sliced(self) -> None:
        """Apply the buffered updates in slices of SLICE seconds, yielding to the event loop
        between slices, with a repaint after each budget of work (see the module docstring)."""
        gc_paused = not self.settled and gc.isenabled()
        if gc_paused:
            # reading in the first listing builds ~10 objects per node, none in a cycle: the
            # collector would walk them again and again (100,000 nodes: 0.1-0.2 s of 1.3 s);
            # _settle freezes them afterwards, so they are never walked at all
            gc.disable()
        try:
            self._scheduled = False
            self._again = False
            self._take_buffer()
            while True:
                self._last_flush = started = self.clock()
                if not self.repaints:
                    budget = self.FIRST_BUDGET
                elif not self.settled:  # still reading in the first listing
                    budget = max(self.LOAD_BUDGET, self._repaint_took / self.LOAD_REPAINT_SHARE)
                else:  # steady state: when behind, show what is applied every refresh interval
                    budget = self.refresh_interval
                while self._backlog and self.clock() - started < budget:
                    await self._after_keys()
                    self._apply_slice(self.SLICE)
                    await asyncio.sleep(0)
                if not self.frozen:
                    await self._after_keys()
                    self._repaint()
                if not self._backlog:
                    break
                await asyncio.sleep(0)
            if not self.settled and (len(self.model.rows) >= 1000 or self.repaints > 8):
                self._settle()
        finally:
            self._flushing = False
            if gc_paused:
                gc.enable()
        if self._again or len(self.buffer):
            self.wake()

    def flush(self) -> None:
        """Apply everything the sources delivered now, then repaint once (unless frozen)."""
        self._last_flush = self.clock()
        self._take_buffer()
        while self._backlog:
            self._apply_slice(3600.0)
        if not self.frozen:
            self._repaint()

    def take_changed(self) -> set[str]:
        """The machine ids changed since the last call (the repaint redraws their lines)."""
        changed, self.changed = self.changed, set()
        return changed

    def _repaint(self) -> None:
        self.repaints += 1
        started = self.clock()
        self.repaint()
        self._repaint_took = self.clock() - started

    def _settle(self) -> None:
        # the first listing of a big fleet is in: move it out of the collector's way, so later
        # full collections do not walk 10,000s of long-lived rows (pauses = lag)
        gc.freeze()
        self.settled = True

    def _take_buffer(self) -> None:
        batch = self.buffer.drain()
        if self.on_drain is not None:
            self.on_drain()
        self._backlog.extend(split_updates(batch, self.model, self.CHUNK))

    def _apply_slice(self, seconds: float) -> None:
        deadline = self.clock() + seconds
        backlog, apply, changed = self._backlog, self.model.apply, self.changed
        n = 0
        while backlog:
            update = backlog.popleft()
            try:
                changed |= apply(update)
            except Exception as exc:  # data from outside must never end the dashboard
                self._unusable(update, exc)
            n += 1
            if n % 64 == 0 and self.clock() > deadline:
                break

    def _unusable(self, update: Update, exc: Exception) -> None:
        """An update the model could not apply: say so in the event log and carry on (the model
        reads every value defensively, so this is a last resort, not the normal path)."""
        self.unusable_updates += 1
        what = f"{type(update).__name__} {getattr(update, 'key', '') or getattr(update, 'kind', '')}"
        self.model.note(f"ignored {what.strip()}: {type(exc).__name__}: {exc}"[:300], "error", kind="BadData")


def _rare_full_collections() -> None:
    """Run full collections rarely: each walks every object alive, and a first listing of 100,000
    nodes builds a million of them (measured: 1.2 s of 5.4 s in 6 full collections), then at
    1,000 changes/s 100-200 ms pauses every few seconds. Rows hold no cycles; what little cyclic
    garbage there is waits longer."""
    first, second, _ = gc.get_threshold()
    gc.set_threshold(first, second, 1000)
